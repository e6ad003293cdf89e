"""Shared output of the benchmark scripts: JSON on stdout, and in a file when asked."""

from __future__ import annotations

import json
from typing import Any


def emit(result: dict[str, Any], json_path: str | None) -> None:
    print(json.dumps(result, indent=2))
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(result, handle, indent=2)
