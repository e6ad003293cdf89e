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
from typing import Any

import orjson

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# A run of 20 digits may be an integer orjson would read as a float. Found by mapping every
# byte to "0" (a digit) or " " and looking for twenty zeros: a regular expression took
# longer than the parse (11 µs for 1 KB against 2).
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_RUN = b"0" * 20


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
    return dumps_bytes(value, sort_keys=sort_keys).decode()


def loads(text: str | bytes) -> Any:
    """The value of JSON text, exactly as the json module reads it."""
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_RUN in raw.translate(_DIGITS):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # NaN, Infinity: json accepts them
        return json.loads(raw)
