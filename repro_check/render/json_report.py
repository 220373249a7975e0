"""The JSON report: ``report.to_dict()`` as strict JSON (no NaN; non-finite floats as strings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repro_check.errors import ConfigError


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write(data: dict[str, Any], path: Path) -> None:
    try:
        path.write_text(dumps(data), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
