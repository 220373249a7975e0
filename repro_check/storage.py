"""Replicate studies in an Optuna storage, shared by several ``repro-check run`` processes.

Each replicate is the study ``<name>/run-<k>`` (a retry after a dead one: ``<name>/run-<k>/
attempt-<a>``), so optuna-dashboard and ``optuna.load_study`` open them. Creating the study is
the claim: storages make study creation atomic, so two processes never run the same replicate.
The check's settings, status, heartbeat and environment live in study user attributes, so a
full report can be rebuilt from the storage alone. Passwords in storage URLs are never shown.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.errors import ReproCheckError
from repro_check.records import (
    STATUS_CRASHED,
    STATUS_OK,
    RunRecord,
    TrialRecord,
    to_json_safe,
)

DEFAULT_STORAGE = "sqlite:///repro-check.db"
"""Where a check named with ``--name`` but no ``--storage`` keeps its studies."""
DEFAULT_STALE_AFTER = 120.0

INFO = "repro_check"
STATUS = "repro_check_status"
HEARTBEAT = "repro_check_heartbeat"
RESULT = "repro_check_result"
RUNNING = "running"

_NAME = re.compile(r"^(?P<check>.+)/run-(?P<k>\d+)(?:/attempt-(?P<a>\d+))?$")
_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@.*)$")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|secret|token)=)(?P<pw>[^&#]*)", re.I
)


class StorageError(ReproCheckError):
    """The storage cannot be opened or used (message redacted)."""


def _secrets(url: str) -> list[str]:
    found = [m["pw"] for m in _QUERY_SECRET.finditer(url) if m["pw"]]
    match = _PASSWORD.match(url)
    if match is not None and match["pw"]:
        found.append(match["pw"])
    return found


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db?password=x`` → ``postgresql://user:***@host/db?password=***``."""
    return redact_text(url, url) or url


def redact_text(text: str | None, url: str | None) -> str | None:
    """Remove the URL's password(s) from any message (drivers like to quote URLs)."""
    if text is None or not url:
        return text
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def open_storage(url: str) -> Any:
    """An Optuna storage: ``journal:<path>`` is the journal file storage, anything else an RDB
    URL (``sqlite:///file.db``, ``postgresql+psycopg://...``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" chatter
    try:
        if url.startswith("journal:"):
            path = url[len("journal:") :].removeprefix("//")
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(path))
        return optuna.storages.RDBStorage(url, heartbeat_interval=None)
    except Exception as exc:
        message = redact_text(f"{type(exc).__name__}: {exc}", url) or ""
        raise StorageError(
            f"cannot open storage {redact(url)}: {message.splitlines()[0]}"
        ) from None


def study_name(check: str, replicate: int, attempt: int = 0) -> str:
    base = f"{check}/run-{replicate}"
    return base if attempt == 0 else f"{base}/attempt-{attempt}"


@dataclass(frozen=True)
class Claim:
    """A replicate this process owns: run it in ``study_name``."""

    replicate: int
    attempt: int
    study_name: str
    study_id: int


@dataclass(frozen=True)
class Attempt:
    """What the storage says about one attempt at a replicate."""

    replicate: int
    attempt: int
    study_name: str
    study_id: int
    attrs: Mapping[str, Any]

    @property
    def status(self) -> str:
        return str(self.attrs.get(STATUS, RUNNING))

    def alive(self, stale_after: float, now: float) -> bool:
        heartbeat = float(self.attrs.get(HEARTBEAT, 0.0))
        return self.status == RUNNING and now - heartbeat < stale_after


class CheckStore:
    """One named check in one storage."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.storage = open_storage(url)

    def _guard(self, what: str, exc: Exception) -> StorageError:
        message = redact_text(f"{type(exc).__name__}: {exc}", self.url) or ""
        return StorageError(f"storage {redact(self.url)}: {what} failed: {message.splitlines()[0]}")

    def attempts(self) -> dict[int, list[Attempt]]:
        """Every attempt at every replicate of this check, oldest attempt first."""
        try:
            studies = self.storage.get_all_studies()
        except Exception as exc:
            raise self._guard("listing studies", exc) from None
        found: dict[int, list[Attempt]] = {}
        for study in studies:
            match = _NAME.match(study.study_name)
            if match is None or match["check"] != self.name:
                continue
            k, a = int(match["k"]), int(match["a"] or 0)
            found.setdefault(k, []).append(
                Attempt(k, a, study.study_name, study._study_id, study.user_attrs)
            )
        return {k: sorted(v, key=lambda x: x.attempt) for k, v in found.items()}

    def settings(self) -> tuple[str, Mapping[str, Any]] | None:
        """(target, settings) this check was started with, if any replicate exists."""
        for attempts in self.attempts().values():
            info = attempts[0].attrs.get(INFO)
            if isinstance(info, Mapping):
                return str(info.get("target")), info.get("settings", {})
        return None

    def claim(
        self,
        replicate: int,
        directions: Sequence[str],
        info: Mapping[str, Any],
        resume: bool,
        stale_after: float,
    ) -> Claim | None:
        """Atomically take replicate ``replicate`` (or, with ``resume``, retake a dead one)."""
        import optuna

        latest = self.attempts().get(replicate, [])
        attempt = 0
        if latest:
            last = latest[-1]
            if last.status == STATUS_OK or last.alive(stale_after, time.time()) or not resume:
                return None
            attempt = last.attempt + 1
        name = study_name(self.name, replicate, attempt)
        study_directions = [optuna.study.StudyDirection[d.upper()] for d in directions]
        try:
            study_id = self.storage.create_new_study(study_directions, name)
        except optuna.exceptions.DuplicatedStudyError:
            return None  # another process claimed it first
        except Exception as exc:
            raise self._guard("claiming a replicate", exc) from None
        claim = Claim(replicate, attempt, name, study_id)
        owner = {"host": socket.gethostname(), "pid": os.getpid()}
        self._set(claim, INFO, {**info, "replicate": replicate, "attempt": attempt, **owner})
        self._set(claim, STATUS, RUNNING)
        self._set(claim, HEARTBEAT, time.time())
        return claim

    def _set(self, claim: Claim, key: str, value: Any) -> None:
        try:
            self.storage.set_study_user_attr(claim.study_id, key, to_json_safe(value))
        except Exception as exc:
            raise self._guard(f"writing {key}", exc) from None

    def heartbeat(self, claims: Sequence[Claim]) -> None:
        now = time.time()
        for claim in claims:
            self._set(claim, HEARTBEAT, now)

    def finish(self, claim: Claim, run: RunRecord) -> None:
        """Record how this process's replicate ended (trials are already in the study)."""
        self._set(
            claim,
            RESULT,
            {
                "error": redact_text(run.error, self.url),
                "wall_s": run.wall_s,
                "notes": list(run.notes),
                "environment": dict(run.environment),
                # the trials exactly as the worker saw them: some storages round floats
                # (SQLite returns -0.0 as 0.0), and a bit-for-bit check must not inherit that
                "trials": [t.to_dict() for t in run.trials],
            },
        )
        self._set(claim, STATUS, run.status)

    def load_runs(self, stale_after: float) -> tuple[list[RunRecord], list[int]]:
        """The latest attempt of every replicate as a RunRecord, and the replicates still
        running elsewhere (alive). A replicate whose worker stopped beating counts as crashed."""
        import optuna

        runs: list[RunRecord] = []
        running: list[int] = []
        now = time.time()
        for replicate, attempts in sorted(self.attempts().items()):
            last = attempts[-1]
            if last.alive(stale_after, now):
                running.append(replicate)
                continue
            info = last.attrs.get(INFO) or {}
            result = last.attrs.get(RESULT) or {}
            status, error = last.status, result.get("error")
            if status == RUNNING:
                status = STATUS_CRASHED
                error = (
                    f"no heartbeat for {stale_after:.0f} s (claimed by {info.get('host')}); "
                    "rerun with --resume to retake it"
                )
            try:
                study = optuna.load_study(study_name=last.study_name, storage=self.storage)
                frozen = study.get_trials(deepcopy=False)
            except Exception as exc:
                raise self._guard(f"reading {last.study_name}", exc) from None
            exact = result.get("trials")
            if isinstance(exact, list):
                trials = tuple(TrialRecord.from_dict(t) for t in exact)
            else:  # the process died before recording them: what the storage kept
                trials = tuple(
                    TrialRecord.from_frozen(t)
                    for t in sorted(frozen, key=lambda t: t.number)
                    if t.state.is_finished()
                )
            runs.append(
                RunRecord(
                    index=replicate,
                    seed=int(info.get("seed", 0)),
                    status=status,
                    trials=trials,
                    directions=tuple(d.name.lower() for d in study.directions),
                    error=error,
                    wall_s=result.get("wall_s"),
                    environment=result.get("environment") or {},
                    notes=tuple(result.get("notes") or ()),
                )
            )
        return runs, running
