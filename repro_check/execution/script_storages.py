"""Script mode's storage privatizer: every replicate reads and writes its own storage.

A SQLite file (any URL SQLAlchemy reads as one) or a journal file the script opens, or a study
it unpickles with its storage, is copied into the replicate's private folder, and the copy is
what the script uses: replicates never share or resume each other's studies, and the user's
file is never written. A server storage becomes an empty private SQLite file. ``changed`` says
when a copied file changed anyway (another process wrote it: the run cannot count).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro_check.redact import redact
from repro_check.storage.store import sqlite_file


class StoragePrivatizer:
    """The private copies made so far, and the Optuna hooks that make them."""

    def __init__(
        self,
        private_dir: str,
        notes: list[str],
        watching: Callable[[], bool],
        keep_copies: bool = False,
    ) -> None:
        self.private_dir = private_dir
        self.notes = notes
        """The capture's run notes: each private copy says so there."""
        self.watching = watching
        """The script still runs (after it, the worker opens the check's own storage)."""
        self.keep_copies = keep_copies
        """A resume check: ``private_dir`` is the replicate's, kept between its two processes;
        a copy already there (the first process's) is reused as it was left, never recopied."""
        self.pid = os.getpid()
        self._private: dict[str, str] = {}
        self._sources: dict[str, tuple[tuple[int, int] | None, ...]] = {}
        """Each storage file copied, with how its files looked then (``changed``)."""

    def install(self, optuna: Any) -> None:
        """Hook Optuna's RDB and journal-file storages (built, and unpickled)."""
        privatizer = self
        rdb = optuna.storages.RDBStorage
        rdb_init = rdb.__init__

        def rdb_private(storage: Any, url: str, *args: Any, **kwargs: Any) -> None:
            if not privatizer.watching():  # the script has ended: the check's own storage
                rdb_init(storage, url, *args, **kwargs)
                return
            private = privatizer.private_url(url)
            if private != url and sqlite_file(url) is None:
                args, kwargs = (), {k: v for k, v in kwargs.items() if k != "engine_kwargs"}
            rdb_init(storage, private, *args, **kwargs)

        rdb.__init__ = rdb_private
        rdb_setstate = rdb.__setstate__

        def rdb_unpickled(storage: Any, state: Any) -> None:
            # a study unpickled with its storage (pickled before the check, or by the script)
            url = state.get("url") if isinstance(state, dict) else None
            if isinstance(url, str) and privatizer.watching() and os.getpid() == privatizer.pid:
                private = privatizer.private_url(url)
                if private != url:
                    state = {**state, "url": private}
                    if sqlite_file(url) is None:
                        state["engine_kwargs"] = {}
            rdb_setstate(storage, state)

        rdb.__setstate__ = rdb_unpickled
        from optuna.storages import journal

        backend_class = journal.JournalFileBackend
        journal_init = backend_class.__init__

        def journal_private(backend: Any, file_path: str, *args: Any, **kwargs: Any) -> None:
            path = (
                privatizer.private_copy(str(file_path), "journal")
                if privatizer.watching()
                else file_path
            )
            journal_init(backend, path, *args, **kwargs)

        backend_class.__init__ = journal_private  # type: ignore[method-assign,assignment]
        locks = (journal.JournalFileSymlinkLock, journal.JournalFileOpenLock)

        def journal_unpickled(backend: Any, state: Any) -> None:
            path = state.get("_file_path") if isinstance(state, dict) else None
            if isinstance(path, str) and privatizer.watching() and os.getpid() == privatizer.pid:
                private = privatizer.private_copy(path, "journal")
                if private != path:
                    state = {**state, "_file_path": private}
                    lock = state.get("_lock")
                    if type(lock) in locks:
                        state["_lock"] = type(lock)(private, lock.grace_period)
                    if not os.path.exists(private):
                        open(private, "ab").close()  # as the backend's __init__ does
            backend.__dict__.update(state)

        backend_class.__setstate__ = journal_unpickled  # type: ignore[attr-defined]

    def private_copy(self, path: str, what: str) -> str:
        """The replicate's own copy of the script's storage file ``path`` (the same copy every
        time the script opens it), made from the file as it is now; the file is only read."""
        source = os.path.realpath(path)
        if source in self._private:
            return self._private[source]
        if source.startswith(os.path.realpath(self.private_dir) + os.sep):
            return path  # a private copy already (a storage unpickled in this process)
        target = os.path.join(self.private_dir, f"{_key(source)}-{Path(path).name}")
        reused = self.keep_copies and os.path.exists(target)
        if not reused:  # a resuming process reads the first one's copy, as it was left
            for suffix in ("", "-wal", "-journal"):
                if os.path.isfile(source + suffix):
                    shutil.copyfile(source + suffix, target + suffix)
        self._private[source] = target
        self._sources[source] = _look(source)
        if reused:  # the first process's note says so already
            return target
        state = "a private copy" if os.path.exists(source) else "a private new file"
        self.notes.append(
            f"the script's {what} storage {path}: every run used {state} (the file is never "
            "written by the check)"
        )
        return target

    def private_url(self, url: str) -> str:
        """The URL the replicate opens instead of ``url``: a SQLite file is copied (any URL
        SQLAlchemy reads as one: ``sqlite+pysqlite:///a.db``, a ``file:`` URI), a server
        (PostgreSQL, MySQL) becomes an empty private SQLite file."""
        if not _is_url(url):
            return url  # not a URL SQLAlchemy reads: Optuna tells the script so
        found = sqlite_file(url)
        if found is not None:
            path, rebuilt = found
            if path is None:
                return url  # in memory: private already
            return rebuilt(self.private_copy(path, "SQLite"))
        if url in self._private:
            return self._private[url]
        target = os.path.join(self.private_dir, f"server-{_key(url)}.db")
        self._private[url] = f"sqlite:///{target}"
        if self.keep_copies and os.path.exists(target):
            return self._private[url]  # the first process's, kept for the resuming one
        self.notes.append(
            f"the script's storage {redact(url)} is a server: every run used an empty private "
            "storage instead, so studies kept there were not loaded"
        )
        return self._private[url]

    def changed(self) -> str | None:
        """Why the run cannot count because a storage file the script opened (and the run
        used a private copy of) changed while the script ran, or None. The hooks reach this
        process only: a subprocess or a spawned multiprocessing worker of the script opens the
        user's own file, writes it, and shares it with the other replicates."""
        for source, before in self._sources.items():
            if _look(source) != before:
                return (
                    f"the storage file {source} changed while the script ran: another process "
                    "wrote it (a subprocess or a spawned multiprocessing worker of the script "
                    "opens the file itself, beyond repro-check's private copy, so replicates "
                    "would share and resume its studies); run such workers in the script's own "
                    "process, or fork them"
                )
        return None


def _is_url(url: str) -> bool:
    try:
        from sqlalchemy.engine import make_url

        make_url(url)
    except Exception:
        return False
    return True


def _key(source: str) -> str:
    """A private copy's name prefix, the same in every process for the same source: the
    resuming process of a resume check finds the first one's copies by it."""
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _look(path: str) -> tuple[tuple[int, int] | None, ...]:
    """Size and modification time of a storage file and its write-ahead log (None: absent)."""
    looks: list[tuple[int, int] | None] = []
    for suffix in ("", "-wal"):
        try:
            stat = os.stat(path + suffix)
        except OSError:
            looks.append(None)
        else:
            looks.append((stat.st_size, stat.st_mtime_ns))
    return tuple(looks)
