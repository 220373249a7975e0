"""Script mode's write watcher: the files the script writes in the working folder.

Replicates that run at once share that folder and may read each other's files, so the run's
notes name what the script wrote, renamed or removed there (an audit hook, this process only).
"""

from __future__ import annotations

import os
import sys
from typing import Any

MAX_WRITTEN = 20
"""The most written paths a run reports (the note names the first few)."""


class WriteWatcher:
    """The paths written so far, while ``watching``."""

    def __init__(self, private_dir: str) -> None:
        self.private_dir = private_dir
        self.watching = True
        """Writes are the script's until it ends (then the worker writes the check's own
        storage, which is not the script's doing)."""
        self.written: list[str] = []
        """Paths in the working folder the script opened for writing, renamed or removed."""

    def install(self) -> None:
        """Note the files the script writes in the working folder (an audit hook: replicates
        running at once share that folder, and may read each other's files)."""
        folder = os.path.realpath(os.getcwd()) + os.sep
        private = os.path.realpath(self.private_dir) + os.sep
        written = self.written

        def hook(event: str, args: tuple[Any, ...]) -> None:
            if not self.watching or len(written) >= MAX_WRITTEN:
                return
            path = written_path(event, args)
            if path is None:
                return
            try:
                real = os.path.realpath(os.fsdecode(path))
            except (TypeError, ValueError, OSError):
                return
            inside = real.startswith(folder) and not real.startswith(private)
            if inside and "__pycache__" not in real:  # not Python's own byte-code cache
                name = real[len(folder) :]
                if name not in written:
                    written.append(name)

        sys.addaudithook(hook)


_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_CHANGES = frozenset({"os.rename", "os.replace", "os.remove", "os.mkdir"})


def written_path(event: str, args: tuple[Any, ...]) -> Any:
    """The path an audit event writes, renames, removes or creates; None for a read."""
    if event == "open" and args:
        mode = args[1] if len(args) > 1 else None
        flags = args[2] if len(args) > 2 else None
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & _WRITES)
        )
        path = args[0] if writing else None
    elif event in _CHANGES and args:
        path = args[0]
    else:
        return None
    return path if isinstance(path, str | bytes | os.PathLike) else None
