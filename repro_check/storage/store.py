"""Replicate studies in an Optuna storage, shared by several ``repro-check run`` processes.

Each replicate is the study ``<name>/run-<k>`` (a retry after a dead one: ``<name>/run-<k>/
attempt-<a>``), so optuna-dashboard and ``optuna.load_study`` open them. Creating the study is
the claim: storages make study creation atomic, so two processes never run the same replicate.
The check's settings, status, heartbeat and environment live in study user attributes, so a
full report can be rebuilt from the storage alone. Passwords in storage URLs are never shown.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.errors import ReproCheckError
from repro_check.json_values import to_json_safe
from repro_check.plan.targets import is_script
from repro_check.redact import redact, redact_text
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_CRASHED,
    STATUS_OK,
    RunRecord,
    StudyRecord,
)
from repro_check.results.trial_record import TrialRecord

INFO = "repro_check"
STATUS = "repro_check_status"
HEARTBEAT = "repro_check_heartbeat"
CLAIM_GRACE = 2.0
"""Seconds a just-created attempt may go without its first heartbeat before it counts as dead."""
RESULT = "repro_check_result"
RUNNING = "running"
ABANDONED = "abandoned"
"""A dead attempt (no heartbeat) that ``--resume`` retook: another attempt replaces it."""
INTERRUPTED = "interrupted"
"""Ctrl-C/SIGTERM stopped the attempt before it finished; ``--resume`` retakes it."""
SUPERSEDED_BY = "repro_check_superseded_by"
STUDY = "repro_check_study"
"""Script mode: on each stored copy of a script's study, its index and info (name, directions,
sampler, pruner, where the script made it, ...)."""
TRIAL_NUMBER = "repro_check_number"
TRIAL_ERROR = "repro_check_error"
"""Script mode: system attributes of each stored trial: its number in the script's own study
(only finished trials are copied, so the copy may number them otherwise) and why it failed."""

OPEN_ATTEMPTS = 10
"""Tries at opening an RDB storage while other processes create its schema."""
_SCHEMA_RACE = re.compile(
    r"already exists|UNIQUE constraint failed|duplicate key value|database is locked|"
    r"deadlock detected|concurrently updated",
    re.I,
)
_DB_MODULES = ("sqlalchemy", "optuna", "sqlite3", "psycopg")

_NAME = re.compile(r"^(?P<check>.+)/run-(?P<k>\d+)(?:/attempt-(?P<a>\d+))?$")


class StorageError(ReproCheckError):
    """The storage cannot be opened or used (message redacted)."""


def schema_race(exc: BaseException) -> bool:
    """True for the errors of several processes creating one storage's schema at once
    (``table studies already exists``, ``UNIQUE constraint failed: alembic_version...``,
    PostgreSQL's ``duplicate key value violates unique constraint "pg_type_typname_nsp_index"``,
    a locked SQLite file): opening again finds the schema the other process made."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        from_db = type(current).__module__.startswith(_DB_MODULES)
        if from_db and _SCHEMA_RACE.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def _open(url: str) -> Any:
    import optuna

    if url.startswith("journal:"):
        path = url[len("journal:") :].removeprefix("//")
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(path))
    return optuna.storages.RDBStorage(url, heartbeat_interval=None)


def open_storage(url: str, attempts: int = OPEN_ATTEMPTS) -> Any:
    """An Optuna storage: ``journal:<path>`` is the journal file storage, anything else an RDB
    URL (``sqlite:///file.db``, ``postgresql+psycopg://...``).

    Processes started together on a new database race to create its tables; the losers get
    integrity/"already exists" errors although the schema is (or is about to be) complete.
    Those are retried a bounded number of times after a short randomized back-off; any other
    error, or a race still lost after ``attempts`` tries, is a one-line ``StorageError``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" chatter
    for attempt in range(attempts):
        try:
            return _open(url)
        except Exception as exc:
            if attempt + 1 < attempts and schema_race(exc):
                time.sleep(random.uniform(0.02, 0.1) * min(2**attempt, 10))
                continue
            message = redact_text(f"{type(exc).__name__}: {exc}", url) or ""
            raise StorageError(
                f"cannot open storage {redact(url)}: {message.splitlines()[0]}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def study_name(check: str, replicate: int, attempt: int = 0) -> str:
    base = f"{check}/run-{replicate}"
    return base if attempt == 0 else f"{base}/attempt-{attempt}"


def script_study_name(claimed: str, index: int) -> str:
    """Where a script's study ``index`` of the replicate claimed as ``claimed`` is stored: each
    in its own Optuna study, with the script's own directions (the claimed study keeps the
    claim, status, heartbeat and result)."""
    return f"{claimed}/study-{index}"


def absolute_url(url: str, base: str | None = None) -> str:
    """``url`` with a relative SQLite or journal file path made absolute (against ``base``,
    the current folder by default), so that a script that changes its working folder still
    writes the check's storage, not a new file."""
    folder = base if base is not None else os.getcwd()
    if url.startswith("journal:"):
        path = url[len("journal:") :].removeprefix("//")
        return f"journal:{os.path.abspath(os.path.join(folder, path))}"
    found = sqlite_file(url)
    if found is not None and found[0] is not None:
        return found[1](os.path.abspath(os.path.join(folder, found[0])))
    return url


def sqlite_file(url: str) -> tuple[str | None, Callable[[str], str]] | None:
    """The file a SQLite storage URL opens, as SQLAlchemy reads the URL (any driver:
    ``sqlite:///a.db``, ``sqlite+pysqlite:///a.db``, a ``file:`` URI with ``uri=true``), and
    a function giving the same URL for another file; the file is None for an in-memory
    database. None: not a SQLite URL (a server, or not a URL SQLAlchemy reads)."""
    from urllib.parse import quote, unquote

    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return None
    except Exception:
        return None
    database = parsed.database or ""
    query = parsed.query
    uri = str(query.get("uri", "")).lower() in ("true", "yes", "on", "y", "t", "1")
    if uri and database.startswith("file:"):  # without uri=true, "file:a.db" is a name
        path, _, _ = database[len("file:") :].partition("?")
        path = path.partition("#")[0]
        if path.startswith("//"):  # file://HOST/path: SQLite takes an empty host or localhost
            path = "/" + path[2:].partition("/")[2]
        path = unquote(path)
        memory = path in ("", ":memory:") or query.get("mode") == "memory"

        def rebuilt(file: str) -> str:
            return str(parsed.set(database=f"file:{quote(file)}").render_as_string(False))

    else:
        path = database
        memory = path in ("", ":memory:")

        def rebuilt(file: str) -> str:
            return str(parsed.set(database=file).render_as_string(False))

    return (None if memory else path), rebuilt


def store_script_study(
    storage: Any,
    claimed: str,
    index: int,
    info: Mapping[str, Any],
    trials: Sequence[tuple[Any, str | None]],
    user_attrs: Any,
) -> None:
    """Copy one study a script made (in its private storage) into the check's storage, as
    ``script_study_name(claimed, index)``: its info in the study's ``repro_check_study``
    attribute, its finished trials (FrozenTrial, error) in number order. ``user_attrs`` maps a
    trial's user attributes to what the storage can keep (JSON-safe, bounded)."""
    import copy

    import optuna

    directions = [optuna.study.StudyDirection[str(d).upper()] for d in info["directions"]]
    study_id = storage.create_new_study(directions, script_study_name(claimed, index))
    storage.set_study_user_attr(study_id, STUDY, to_json_safe({"index": index, "info": info}))
    for frozen, error in sorted(trials, key=lambda pair: int(pair[0].number)):
        template = copy.copy(frozen)
        template.user_attrs = user_attrs(to_json_safe(dict(frozen.user_attrs)))
        system = {**frozen.system_attrs, TRIAL_NUMBER: int(frozen.number)}
        if error is not None:
            system[TRIAL_ERROR] = error
        template.system_attrs = to_json_safe(system)
        storage.create_new_trial(study_id, template_trial=template)


@dataclass(frozen=True)
class Claim:
    """A replicate this process owns: run it in ``study_name``."""

    replicate: int
    attempt: int
    study_name: str
    study_id: int


@dataclass(frozen=True)
class Loaded:
    """A check as the storage has it: one run per replicate that is not running any more."""

    runs: list[RunRecord]
    running: list[int]
    """Replicates whose latest attempt is still beating (elsewhere or here)."""
    interrupted: list[int]
    """Replicates whose latest attempt Ctrl-C/SIGTERM cut short (in ``runs``, cancelled)."""
    info: dict[int, Mapping[str, Any]]
    """What each replicate in ``runs`` was claimed with (target, settings, owner)."""


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
        self._dead_claims: set[str] = set()
        """Attempts already waited ``CLAIM_GRACE`` for: every later listing takes them as dead."""

    def _guard(self, what: str, exc: Exception) -> StorageError:
        message = redact_text(f"{type(exc).__name__}: {exc}", self.url) or ""
        return StorageError(f"storage {redact(self.url)}: {what} failed: {message.splitlines()[0]}")

    def attempts(self) -> dict[int, list[Attempt]]:
        """Every attempt at every replicate of this check, oldest attempt first.

        A claim is a study created first and its attributes written after: an attempt seen
        between the two has no heartbeat yet and would look dead (a false crash, or a retake of
        a replicate that is just starting). So such a listing is read again until every attempt
        has its heartbeat, for at most ``CLAIM_GRACE`` seconds; after that the claimer died in
        between and the attempt is as dead as it looks."""
        deadline = time.monotonic() + CLAIM_GRACE
        while True:
            found = self._list_attempts()
            claiming = {
                a.study_name
                for v in found.values()
                for a in v
                if HEARTBEAT not in a.attrs and a.study_name not in self._dead_claims
            }
            if not claiming:
                return found
            if time.monotonic() >= deadline:
                self._dead_claims |= claiming  # one wait per dead claim, not one per listing
                return found
            time.sleep(0.05)

    def _list_attempts(self) -> dict[int, list[Attempt]]:
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
        last: Attempt | None = None
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
        if last is not None and last.status == RUNNING:
            # the dead attempt must not stay "running" forever: say it was given up, and for what
            self._set_id(last.study_id, STATUS, ABANDONED)
            self._set_id(last.study_id, SUPERSEDED_BY, name)
        return claim

    def _set(self, claim: Claim, key: str, value: Any) -> None:
        self._set_id(claim.study_id, key, value)

    def _set_id(self, study_id: int, key: str, value: Any) -> None:
        try:
            self.storage.set_study_user_attr(study_id, key, to_json_safe(value))
        except Exception as exc:
            raise self._guard(f"writing {key}", exc) from None

    def _status(self, claim: Claim) -> str:
        try:
            attrs = self.storage.get_study_user_attrs(claim.study_id)
        except Exception as exc:
            raise self._guard("reading a status", exc) from None
        return str(attrs.get(STATUS, RUNNING))

    def heartbeat(self, claims: Sequence[Claim]) -> None:
        now = time.time()
        for claim in claims:
            self._set(claim, HEARTBEAT, now)

    def finish(self, claim: Claim, run: RunRecord, interrupted: bool = False) -> None:
        """Record how this process's replicate ended (trials are already in the study).

        ``interrupted``: Ctrl-C/SIGTERM stopped this process; a run it cut short is stored as
        ``interrupted`` (not as a ``--fail-fast`` stop), for ``--resume`` to retake. An attempt
        that another process already retook as dead keeps its ``abandoned`` status: the
        replicate has exactly one live attempt, the newest."""
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
                # script mode: every study, in order (the first one's trials are ``trials``)
                "studies": [s.to_dict(with_trials=i > 0) for i, s in enumerate(run.studies)],
            },
        )
        if self._status(claim) == ABANDONED:
            return
        cut_short = interrupted and run.status == STATUS_CANCELLED
        self._set(claim, STATUS, INTERRUPTED if cut_short else run.status)

    def load_runs(self, stale_after: float) -> Loaded:
        """The latest attempt of every replicate as a RunRecord, the replicates still running
        elsewhere (alive), and those an interrupt cut short. A replicate whose worker stopped
        beating counts as crashed."""
        import optuna

        runs: list[RunRecord] = []
        running: list[int] = []
        interrupted: list[int] = []
        infos: dict[int, Mapping[str, Any]] = {}
        now = time.time()
        for replicate, attempts in sorted(self.attempts().items()):
            last = attempts[-1]
            if last.alive(stale_after, now):
                running.append(replicate)
                continue
            info = last.attrs.get(INFO) or {}
            infos[replicate] = info
            result = last.attrs.get(RESULT) or {}
            status, error = last.status, result.get("error")
            if status == RUNNING:
                status = STATUS_CRASHED
                error = (
                    f"no heartbeat for {stale_after:g} s (claimed by {info.get('host')}); "
                    "rerun with --resume to retake it"
                )
            elif status == INTERRUPTED:
                interrupted.append(replicate)
                status = STATUS_CANCELLED
                error = (
                    f"interrupted before it finished (on {info.get('host')}); "
                    "rerun with --resume to retake it"
                )
            elif status == ABANDONED:  # its successor study is missing: never "finished"
                status = STATUS_CRASHED
                error = "abandoned as dead; rerun with --resume to retake it"
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
            directions = tuple(d.name.lower() for d in study.directions)
            studies: tuple[StudyRecord, ...] = ()
            if is_script(str(info.get("target", ""))):
                studies = self._script_studies(last, result, trials)
                if studies:
                    trials, directions = studies[0].trials, studies[0].directions
                elif status == STATUS_OK:
                    # finished, yet its studies are not there: it cannot be compared, and a
                    # run left out of the comparison must never help a "reproducible"
                    status = STATUS_CRASHED
                    error = "finished, but its studies are missing from the storage"
            runs.append(
                RunRecord(
                    index=replicate,
                    seed=int(info.get("seed", 0)),
                    status=status,
                    trials=trials,
                    directions=directions,
                    error=error,
                    wall_s=result.get("wall_s"),
                    environment=result.get("environment") or {},
                    notes=tuple(result.get("notes") or ()),
                    studies=studies,
                )
            )
        return Loaded(runs, running, interrupted, infos)

    def _script_studies(
        self, last: Attempt, result: Mapping[str, Any], trials: tuple[TrialRecord, ...]
    ) -> tuple[StudyRecord, ...]:
        """A script replicate's studies: as its process recorded them when it finished (the
        exact floats, ``trials`` being the first study's), else (it died first) the copies its
        worker stored as ``<attempt>/study-<i>``."""
        recorded = result.get("studies")
        if isinstance(recorded, list):
            try:
                return tuple(
                    StudyRecord.from_dict(s, trials if i == 0 else None)
                    for i, s in enumerate(recorded)
                )
            except Exception as exc:
                raise self._guard(f"reading the studies of {last.study_name}", exc) from None
        found: list[StudyRecord] = []
        while True:
            name = script_study_name(last.study_name, len(found))
            try:
                study_id = self.storage.get_study_id_from_name(name)
            except KeyError:
                return tuple(found)
            except Exception as exc:
                raise self._guard(f"reading {name}", exc) from None
            try:
                stored = self.storage.get_study_user_attrs(study_id).get(STUDY) or {}
                frozen = self.storage.get_all_trials(study_id, deepcopy=False)
                copies = tuple(
                    sorted(
                        (_stored_trial(t) for t in frozen if t.state.is_finished()),
                        key=lambda t: t.number,
                    )
                )
                found.append(StudyRecord.from_dict(stored.get("info") or {}, copies))
            except Exception as exc:
                raise self._guard(f"reading {name}", exc) from None


def _stored_trial(frozen: Any) -> TrialRecord:
    """A trial a script replicate's worker stored: its number and error as the script's own
    study had them."""
    system = frozen.system_attrs
    number = system.get(TRIAL_NUMBER)
    error = system.get(TRIAL_ERROR)
    record = TrialRecord.from_frozen(frozen, error=error if isinstance(error, str) else None)
    if isinstance(number, int) and not isinstance(number, bool):
        record = dataclasses.replace(record, number=number)
    return record
