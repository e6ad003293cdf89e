"""JSON text of flowmail's own records (commands' template data, changelog rows, analytics
documents), through orjson where it gives the same values back as the json module.

Why: json.dumps and json.loads were 7 % of a worker's CPU in the benchmark's mix, and
orjson does the same work several times faster. Where the two differ, the json module
decides: integers beyond 64 bits (orjson refuses to write them and reads them as floats),
keys that are not strings, surrogates, and NaN or Infinity in text it reads. NaN and
Infinity are written as null (JSON has neither; the json module wrote invalid JSON). Dates,
times and dataclasses go to ``default=str`` as they did with the json module, so text
already stored reads the same.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# a run of 20 digits may be an integer orjson would read as a float
_LONG_NUMBER = re.compile(r"\d{20}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{20}")


def dumps_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON; anything else the json module can write goes through it."""
    try:
        return orjson.dumps(value, default=str,
                            option=_OPTIONS | orjson.OPT_SORT_KEYS if sort_keys else _OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: big integers, non-string keys, surrogates
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str,
                          sort_keys=sort_keys).encode()


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """``dumps_bytes`` as text."""
    try:
        return orjson.dumps(value, default=str,
                            option=_OPTIONS | orjson.OPT_SORT_KEYS if sort_keys else _OPTIONS
                            ).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str,
                          sort_keys=sort_keys)


def loads(text: str | bytes) -> Any:
    """The value of JSON text, exactly as the json module reads it."""
    long_number = _LONG_NUMBER if isinstance(text, str) else _LONG_NUMBER_BYTES
    if long_number.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, Infinity: json accepts them
        return json.loads(text)
