"""Which stack frames are the user's own code (not the standard library, not an installed
package, not repro-check): the line a script built a study or a sampler on is the first such
frame out from the call."""

from __future__ import annotations

import os
import sys
import sysconfig
from functools import cache
from pathlib import Path
from types import FrameType


@cache
def _library_roots() -> tuple[str, ...]:
    roots = {
        sysconfig.get_paths().get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    roots.add(str(Path(__file__).resolve().parents[1]))  # repro_check itself
    try:
        import optuna

        roots.add(str(Path(optuna.__file__).resolve().parent))
    except ImportError:  # pragma: no cover - optuna is a dependency
        pass
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if r))


_USER_ROOTS: list[str] = [str(Path(__file__).resolve().parents[1] / "examples") + os.sep]
"""Folders that hold the user's code even inside a library root: the script's own folder or
package (``-m`` of an installed package), and repro-check's bundled examples."""


def add_user_root(folder: str) -> None:
    """Count every file under ``folder`` as the user's code (before any frame is looked at)."""
    _USER_ROOTS.append(os.path.realpath(folder) + os.sep)
    is_user_file.cache_clear()


@cache
def is_user_file(filename: str) -> bool:
    """A real file outside the standard library, site-packages, optuna and repro-check (or
    inside a folder ``add_user_root`` named). The closest folder decides: a package installed
    in site-packages and run with ``-m`` is the user's, a virtual environment inside the
    script's folder (``project/.venv``) is not."""
    if not filename or filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    user = max((len(root) for root in _USER_ROOTS if path.startswith(root)), default=-1)
    library = max((len(root) for root in _library_roots() if path.startswith(root)), default=-1)
    return user >= max(library, _site_packages(path))


def _site_packages(path: str) -> int:
    """The length of ``path``'s last ``site-packages``/``dist-packages`` folder, -1 if none: a
    package installed in another environment than the running one (a ``--user`` site, another
    virtual environment on ``PYTHONPATH``) is library code too."""
    ends = [at + len(folder) for folder in _SITE_FOLDERS if (at := path.rfind(folder)) >= 0]
    return max(ends, default=-1)


_SITE_FOLDERS = tuple(f"{os.sep}{name}{os.sep}" for name in ("site-packages", "dist-packages"))


def shown_path(filename: str) -> str:
    """The file as the user would name it: relative to the current folder when inside it."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def user_location(skip: int = 1) -> str | None:
    """``file:line`` of the innermost frame in the user's code, out from the caller; None when
    only library code is on the stack (Optuna built it for itself)."""
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return f"{shown_path(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def last_user_line(exc: BaseException) -> str | None:
    """``file:line: source`` of the deepest user frame in ``exc``'s traceback, else None."""
    import linecache

    found = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if is_user_file(code.co_filename):
            found = (code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return None
    source = linecache.getline(found[0], found[1]).strip()
    where = f"{shown_path(found[0])}:{found[1]}"
    return f"{where}: {source}" if source else where
