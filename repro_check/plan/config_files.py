"""Reading the files a plan comes from (``--config`` TOML, the nearest pyproject.toml) as
untrusted input: bounded, regular files only, UTF-8, one-line errors. ``config.py`` merges
what they hold with the flags."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro_check.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
"""A config file or pyproject.toml larger than this (1 MiB) is refused, not read."""


def read_text(path: Path, what: str = "config file") -> str:
    """The UTF-8 text of a small regular file, or a one-line ``ConfigError``.

    Checked before it is opened, and again on the open descriptor: a FIFO would block the read
    forever, ``/dev/zero`` never ends, and ``/proc`` files claim size 0, so at most
    ``MAX_CONFIG_BYTES`` + 1 bytes are read whatever the size says.
    """
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{what} is a directory: {path}")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} is not a regular file (a FIFO, device or socket): {path}")
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        descriptor = os.open(path, flags)
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # swapped since the stat
                raise ConfigError(f"{what} is not a regular file: {path}")
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (MemoryError, OverflowError, ValueError) as exc:  # a path with a NUL byte, say
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what} {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    text = read_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"invalid TOML in {path}: nested too deeply") from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise ConfigError(f"invalid TOML in {path}: {str(exc).splitlines()[0]}") from None


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``.

    Only regular files count (a FIFO or device named pyproject.toml is not a project file); a
    folder that cannot be searched ends the walk, as what is nearest is then unknown.
    """
    try:
        folders = (start, *start.absolute().parents)
    except OSError:  # the current folder was removed
        return None
    for folder in folders:
        candidate = folder / "pyproject.toml"
        try:
            info = candidate.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except (OSError, ValueError):
            return None
        if stat.S_ISREG(info.st_mode):
            return candidate
    return None


def tool_table(data: Mapping[str, Any], path: Path, default: Any) -> Any:
    """``[tool.repro-check]`` of a parsed file, ``default`` when it has none."""
    tool = data.get("tool", {})
    if not isinstance(tool, Mapping):
        raise ConfigError(f"{path}: [tool] must be a table")
    table = tool.get("repro-check", default)
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: [tool.repro-check] must be a table")
    return table


def anchor_target(table: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """A relative ``file.py:attr`` target in a config file is relative to that file's folder,
    so the check runs the same from any subfolder."""
    target = table.get("target")
    if not isinstance(target, str):
        return table
    location, sep, attr = target.rpartition(":")
    file_part = location if sep else target
    if not file_part.endswith(".py") or Path(file_part).is_absolute():
        return table
    anchored = str((path.parent / file_part).resolve())
    return {**table, "target": f"{anchored}{sep}{attr}" if sep else anchored}
