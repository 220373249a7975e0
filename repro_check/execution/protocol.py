"""The worker protocol: the job a parent hands a worker, and every event a worker streams back.

Both ends use these types and nothing else: the parent (``execution.runner``) builds a
``JobSpec`` from a ``Job``, the worker (``execution.worker``) reads it back as one, streams one
``Event`` per line, and the parent's stream check (``execution.stream``) validates each line by
converting it to the ``Event`` union: which events exist, their fields, the error kinds and the
bounds on what a worker may send are read from the types here, never listed a second time.
``PROTOCOL_VERSION`` is carried in the job and in the worker's ``started`` event; change it with
any change of shape here.

The wire stays JSON lines written by the standard library (NaN and infinity pass as Python's
``json`` writes them, exactly as before the types existed): msgspec converts the parsed objects,
and refuses, while it converts, anything that does not fit. The module imports msgspec and the
standard library only: a script's worker loads it before the user's script, which must find
nothing of optuna or numpy already imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union, get_args

import msgspec

from repro_check.execution.linetrace import MAX_EVENTS, MAX_LOCALS

PROTOCOL_VERSION = 3
"""The shape of ``JobSpec`` and the events: a parent refuses a worker that speaks another."""

MAX_AUDIT_SITES = 1000
"""The most sites an entropy audit reports (as events, and in its final report)."""
MAX_TRACE_OPS = 5000
"""The most torch ops a line trace reports."""

WORKER_BOOTSTRAP = (
    "import sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"
    "from repro_check.execution.worker import main\n"
    "main()\n"
)
"""How a worker starts: with the flags ``python train.py`` has (not ``-P``, which sets
``sys.flags.safe_path`` for the user's code too), its own imports kept from the user's folder
(a ``json.py`` there) by dropping the current folder ``-c`` puts first on ``sys.path``; the
worker adds the script's (or target's) folder itself, right before it loads it."""

SCRIPT_ARG = "script"
"""The worker's argument when its job will be a script: its warm-up then imports nothing the
script would import itself (optuna, numpy)."""


# -- the job -----------------------------------------------------------------------------------


class _Wire(msgspec.Struct, forbid_unknown_fields=True):
    """A protocol type: a key it does not declare is refused, never ignored."""


class ResumeSpec(_Wire):
    """``run SCRIPT --resume-at``: the replicate's folder, kept between its two processes, and
    which of them this is (1: the first, 2: the resuming one)."""

    dir: str
    phase: int


class ScriptSpec(_Wire):
    """Script mode: the script to run whole (``path`` or ``-m module``) with its arguments."""

    path: str | None = None
    module: str | None = None
    args: list[str] = []
    name: str | None = None
    """How the check names the script (in "ran but created no Optuna study")."""
    resume: ResumeSpec | None = None
    parameters: dict[str, str] = {}
    """A notebook's ``-p`` values: name -> the Python source it is assigned."""


class JobSpec(_Wire):
    """What one worker process runs: the fields of ``runner.Job``, resolved for this check."""

    target: str
    index: int
    seed: int
    study: dict[str, Any]
    """``StudySettings.to_dict()``."""
    controls: dict[str, Any]
    """``Controls.to_dict()``."""
    threads: int
    device: str
    studies: int = 1
    fixed_params: dict[str, Any] | None = None
    warn_only: bool = False
    storage: str | None = None
    study_name: str | None = None
    script: ScriptSpec | None = None
    cap: int | None = None
    audit: bool = False
    trace: bool = False
    trace_at: tuple[int, int] | None = None
    first_trial: int = 0
    version: int = PROTOCOL_VERSION


def job_line(spec: JobSpec, nonce: str) -> bytes:
    """The job as the one line the parent writes to a worker's stdin (the nonce rides beside
    the spec, never in it: the worker keeps it only in its stream's closure)."""
    return (_dumps({"nonce": nonce, **_fields(spec)}) + "\n").encode()


def read_job(line: bytes) -> tuple[str, JobSpec]:
    """(nonce, spec) of the parent's line; raises when it is not a job of this version."""
    data = json.loads(line)
    nonce = str(data.pop("nonce", ""))
    spec = msgspec.convert(data, JobSpec)
    if spec.version != PROTOCOL_VERSION:
        raise ValueError(f"a job of protocol {spec.version}, this worker speaks {PROTOCOL_VERSION}")
    return nonce, spec


# -- the events --------------------------------------------------------------------------------


class _Event(_Wire, tag_field="event"):
    """One line of a worker's stream (its ``nonce`` and ``pid`` travel beside the fields)."""


class Started(_Event, tag="started"):
    """The job was read: the parent's timeout clock starts. ``version`` is the worker's
    ``PROTOCOL_VERSION`` (required: a worker that does not say is not this one)."""

    version: int


class Trial(_Event, tag="trial"):
    """One finished trial of study ``study`` (``TrialRecord.to_dict()``, checked by its codec)."""

    study: int
    trial: dict[str, Any]


class StudyInfo(_Event, tag="study_info"):
    """Script mode: study ``study`` (the next in creation order, or one already announced,
    updated) as the script made it, before its trials stream: what a run stopped halfway
    (a timeout, Ctrl-C) is compared on, and what progress counts toward."""

    study: int
    info: dict[str, Any]
    """The study as a ``StudyRecord`` dict without trials (the final one: ``study_done``'s)."""
    planned: int | None = None
    """Trials its ``optimize`` calls asked for so far (cut to ``--trials``); None: unknown."""


class StudyDone(_Event, tag="study_done"):
    """Study ``study`` ended; its own view of its trials, to check the streamed ones against."""

    study: int
    emitted: int
    """Trial events the worker streamed for it."""
    count: int
    """Trials the study holds."""
    digest: str
    """``trials_digest`` of their numbers and states."""
    stopped: bool
    """Stopped (``Study.stop``) before it ran every trial asked for."""
    info: dict[str, Any] | None = None
    """Script mode: the study as a ``StudyRecord`` dict without trials."""
    content: str | None = None
    """Script mode: ``content_digest`` of its finished trials as the study holds them at the
    end; trials streamed while the script ran must match it, field for field."""


class AuditSite(_Wire):
    """A call of the user's code into a source of variation (``execution.audit.Site``)."""

    source: str
    kind: str
    file: str
    line: int
    text: str
    trials: list[int]
    calls: int


class AuditReport(_Wire):
    """The entropy audit of a whole job: its sites, and which trials used each global stream."""

    sites: Annotated[list[AuditSite], msgspec.Meta(max_length=MAX_AUDIT_SITES)]
    consumed: dict[str, list[int]]


ErrorKind = Literal["target", "config", "device", "determinism", "objective", "script"]
ERROR_KINDS = frozenset(get_args(ErrorKind))


class Done(_Event, tag="done"):
    """The job finished: how, and where."""

    wall_s: float | None = None
    environment: dict[str, Any] = {}
    notes: list[str] = []
    nondeterministic_ops: list[str] = []
    studies: int | None = None
    """Script mode: how many studies were streamed."""
    audit: AuditReport | None = None


class Error(_Event, tag="error"):
    """The job ended early: ``kind`` says whose fault (set-up errors stop the whole check)."""

    kind: ErrorKind
    message: str
    ops: list[str] = []
    """Ops torch named as lacking a deterministic kernel, so far."""


class Audit(_Event, tag="audit"):
    """A site the entropy audit found, streamed as found (kept if the run is stopped)."""

    site: AuditSite


TraceLine = tuple[
    str, int, Annotated[dict[str, tuple[str, str]], msgspec.Meta(max_length=MAX_LOCALS)]
]
"""[file, line, {local: [digest, shown]}] (``execution.linetrace``)."""
TorchOp = Annotated[list[str], msgspec.Meta(min_length=3, max_length=3)]
"""[op, user line, output digest]."""


class Trace(_Event, tag="trace"):
    """The line trace of one trial (``diagnose``'s line-trace probe)."""

    events: Annotated[list[TraceLine], msgspec.Meta(max_length=MAX_EVENTS)]
    ops: Annotated[list[TorchOp], msgspec.Meta(max_length=MAX_TRACE_OPS)] = []
    truncated: Annotated[str, msgspec.Meta(max_length=199)] | None = None
    """Why the trace stopped early (a bound it met), or None."""
    backend: str | None = None


Event = Union[Started, StudyInfo, Trial, StudyDone, Done, Error, Audit, Trace]  # noqa: UP007 - a runtime value
EVENT_TYPES: tuple[type[_Event], ...] = get_args(Event)


def event_name(cls: type[_Event]) -> str:
    """The ``event`` a type is streamed as (its msgspec tag)."""
    return str(cls.__struct_config__.tag)


EVENT_NAMES = frozenset(event_name(cls) for cls in EVENT_TYPES)


def event_line(event: _Event, nonce: str, pid: int) -> str:
    """The JSON line a worker streams for ``event`` (without its newline)."""
    return _dumps({"event": event_name(type(event)), "nonce": nonce, "pid": pid, **_fields(event)})


def read_event(data: dict[str, Any]) -> Event:
    """The event a parsed line (its nonce and pid taken off) holds; raises
    ``msgspec.ValidationError`` when it is not one of the ``Event`` types, exactly."""
    found: Event = msgspec.convert(data, type=Event)
    return found


def trial_hash(trial: dict[str, Any]) -> str:
    """One trial's wire dict, hashed as the parent parses it (keys sorted, after a JSON round
    trip: integer keys become strings on the way)."""
    text = json.dumps(json.loads(json.dumps(trial)), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def content_digest(hashes: Iterable[tuple[int, str]]) -> str:
    """The digest of a study's trials from their ``trial_hash`` es, in trial-number order."""
    text = ";".join(f"{number}:{found}" for number, found in sorted(hashes))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _fields(struct: msgspec.Struct) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


def _dumps(data: dict[str, Any]) -> str:
    """Python's own JSON (as the stream always was), nested protocol types as their fields."""
    return json.dumps(data, default=_nested)


def _nested(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return _fields(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
