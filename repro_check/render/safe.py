"""Control characters out of terminal output: user-controlled text is shown, never obeyed.

A target, a param name, an objective's error message or a saved report can hold ESC/CSI
sequences, BEL, ``\\r`` or lone surrogates. Printed raw they would recolour, move the cursor,
retitle or rewrite the terminal (NO_COLOR or not), and a surrogate cannot even be encoded. Here
they become ``\\xNN``/``\\uNNNN``, as in the Markdown and JUnit outputs. Cheap to import (no
rich), so the command line's error path can use it.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 controls except tab and newline, DEL, C1 controls (``\\x9b`` is a one-byte CSI) and lone
surrogates."""
_CONTROL_OR_NEWLINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _code(match: re.Match[str]) -> str:
    point = ord(match.group())
    return f"\\x{point:02x}" if point <= 0xFF else f"\\u{point:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character but tab and newline written as ``\\xNN``."""
    return _CONTROL.sub(_code, text)


def one_line(text: str) -> str:
    """``text`` on one line: newlines and tabs are escaped too (for one-line error messages)."""
    return _CONTROL_OR_NEWLINE.sub(_code, text)


def has_controls(text: str) -> bool:
    return _CONTROL.search(text) is not None
