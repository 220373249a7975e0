"""Reading a saved report's file: bounded before a byte is decoded.

Only a regular file (never a FIFO, device or directory), at most ``MAX_REPORT_BYTES``, read once
into one buffer. ``validate`` decodes and checks what this returns.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from repro_check.errors import ReproCheckError
from repro_check.results.saved_errors import printable

MAX_REPORT_BYTES = 512 * 1024 * 1024
"""Largest saved report read (512 MiB; 100 runs x 10,000 trials is about 230 MB)."""


class ReportError(ReproCheckError):
    """A saved report that cannot be used: missing, not JSON, wrong schema, wrong types."""


def _read_all(fd: int, size: int) -> bytearray:
    """At most ``MAX_REPORT_BYTES + 1`` bytes of ``fd``, read into one buffer of the size the
    file had (a file that grew since is read on in chunks): the report is held once, not as
    chunks and their join (a 300 MB report would peak at twice that)."""
    buffer = bytearray(min(size, MAX_REPORT_BYTES) + 1)  # one more: sees a file that grew
    view = memoryview(buffer)
    filled = 0
    with open(fd, "rb", buffering=0, closefd=False) as handle:
        while filled < len(buffer):
            count = handle.readinto(view[filled:])
            if not count:
                break
            filled += count
        view.release()
        del buffer[filled:]
        while filled == len(buffer) and len(buffer) <= MAX_REPORT_BYTES:
            chunk = handle.read(min(1 << 24, MAX_REPORT_BYTES + 1 - len(buffer)))
            if not chunk:
                break
            buffer += chunk
            filled = len(buffer)
    return buffer


def read_bounded(path: Path) -> bytearray:
    """The file's bytes: a regular file only (checked before opening, so a FIFO cannot block
    and /dev/zero cannot fill memory) and at most ``MAX_REPORT_BYTES``."""
    shown = printable(str(path), 1000)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ReportError(f"no such file: {shown}") from None
    except OSError as exc:
        raise ReportError(f"cannot read {shown}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ReportError(f"{shown} is a directory, not a report")
    if not stat.S_ISREG(info.st_mode):
        raise ReportError(f"{shown} is not a regular file (a FIFO, device or socket), not a report")
    if info.st_size > MAX_REPORT_BYTES:
        raise ReportError(
            f"{shown}: report too large ({info.st_size} bytes; at most {MAX_REPORT_BYTES})"
        )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ReportError(f"cannot read {shown}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO since the stat
            raise ReportError(f"{shown} is not a regular file, not a report")
        raw = _read_all(fd, os.fstat(fd).st_size)
        if len(raw) > MAX_REPORT_BYTES:  # grew since the stat
            raise ReportError(f"{shown}: report too large (more than {MAX_REPORT_BYTES} bytes)")
        return raw
    except OSError as exc:
        raise ReportError(f"cannot read {shown}: {exc.strerror}") from None
    finally:
        os.close(fd)
