"""Script mode in the worker: run the user's script as ``python train.py ARGS`` would, and
record every Optuna study it creates or loads.

Optuna is hooked at a few choke points before the script runs, all in this process only:
``Study.__init__`` (every ``create_study``/``load_study``, in creation order, and Optuna's
default sampler), ``Study.__setstate__`` (a study the script deep-copies or loads with
``pickle``/``joblib``: no ``__init__`` builds it), the samplers' ``__init__`` (the arguments
the script gave, where it built them, a seed added under ``--controls``), ``Study.optimize``
(n_trials/timeout/n_jobs asked, ``--trials`` caps, each trial's error kept) and ``Study.ask``
(every trial, ask/tell loops too: the per-trial reseed and the cap; a study none of the others
saw is recorded there, and a study asked for trials in another process makes the run a crash).
Storages are made private, those the script opens and those it unpickles: a SQLite file (any
URL SQLAlchemy reads as one) or journal is copied, and the copy is what the replicate reads
and writes, so replicates never share or resume each other's studies and the user's file is
never written.

Trials are streamed once the script has ended, study by study, from each study's own storage
(``study.get_trials``), so trials added by ``enqueue_trial``/``add_trial`` or told in any order
are all there, and the parent checks the stream against the study's own count and digest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import operator
import os
import pickle
import re
import runpy
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from repro_check.execution.protocol import ScriptSpec, StudyDone, Trial
from repro_check.execution.target import one_line
from repro_check.execution.userframes import (
    add_user_root,
    is_user_file,
    last_user_line,
    user_location,
)
from repro_check.results.records import (
    SamplerInfo,
    StudyRecord,
    TrialRecord,
    pending_key,
    saved_attrs,
    trials_digest,
)
from repro_check.results.resume import RESTARTED
from repro_check.storage.redact import redact
from repro_check.storage.store import sqlite_file

MAX_WRITTEN = 20
"""The most written paths a run reports (the note names the first few)."""

RESUME_BASE = "resume-base.json"
"""``run SCRIPT --resume-at K``: the file, in the replicate's private folder, where the first
process leaves how many trials it added to each study (by name); the resuming process reads it
to cap each study it loads so that it ends at ``--trials`` trials in all."""


CHILD_ENV = "REPRO_CHECK_CHILD_STUDIES"
"""The file a Python child of the script (a spawned ``multiprocessing`` worker, a
subprocess) writes a line to when it creates an Optuna study or asks one for trials
(``_TRIPWIRE``)."""

_TRIPWIRE = '''"""repro-check: a Python process the checked script started. When it creates an
Optuna study, or asks one for trials (a study it unpickled: a spawned multiprocessing worker's
argument), a line goes to the file the environment names: the check never sees that study's
trials, so the run cannot count. Then the sitecustomize this one shadows, if any, runs."""
import os
import sys


def _tripwire():
    path = os.environ.get("REPRO_CHECK_CHILD_STUDIES")
    if not path:
        return

    class Finder:
        def find_spec(self, name, target=None, *args):
            if name != "optuna.study.study":
                return None
            import importlib.util

            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
                init, ask = module.Study.__init__, module.Study.ask
                told = set()

                def tell(study, did):
                    if id(study) in told:
                        return
                    told.add(id(study))
                    frame, where = sys._getframe(2), ""
                    while frame is not None:
                        name = frame.f_code.co_filename
                        if "optuna" not in name.replace(os.sep, "/").split("/")[-3:-1]:
                            where = " at %s:%d" % (name, frame.f_lineno)
                            break
                        frame = frame.f_back
                    name = str(study.study_name)
                    shown = "an unnamed study" if name.startswith("no-name-") else "study %r" % name
                    line = "%s %s%s in a Python process it started (pid %d: a spawned " \\
                        "multiprocessing worker or a subprocess)" % (did, shown, where, os.getpid())
                    try:
                        with open(path, "a") as file:
                            file.write(line.replace("\\n", " ") + "\\n")
                    except OSError:
                        pass

                def hooked(study, *a, **k):
                    init(study, *a, **k)
                    tell(study, "created")

                def asked(study, *a, **k):  # one it created, or one it unpickled
                    tell(study, "asked for trials of")
                    return ask(study, *a, **k)

                module.Study.__init__ = hooked
                module.Study.ask = asked

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())


def _chain():
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    me = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if "sitecustomize" not in sys.modules and me is not None:
            sys.modules["sitecustomize"] = me  # the import system pops it when this one ends


_tripwire()
_chain()
'''


class CapReached(BaseException):
    """An ask/tell loop asked for more trials than ``--trials``: the script stops there (a
    BaseException, so the script's own ``except Exception`` cannot swallow it)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class ScriptExit(Exception):
    """The script ended in a way that makes the run a crash (message: one line why)."""


@dataclasses.dataclass
class _Entry:
    """One study the script created or loaded, as the hooks saw it."""

    study: Any
    at: str | None
    sampler: SamplerInfo
    pruner: str | None
    initial: int
    """Trials it held when the script opened it (a resumed storage)."""
    limit: int | None = None
    """The most trials this run may ask for it (``--trials``, less what the first process of a
    resume check already added to it); None: no cap."""
    n_trials: int | None = None
    timeout: float | None = None
    n_jobs: int = 1
    capped: bool = False
    asked: int = 0
    """Trials this run asked for (through ``optimize`` or ``ask``)."""
    refused: int = 0
    """Asks the cap refused (more than one: the script swallowed ``CapReached``)."""
    active: int = 0
    """``optimize`` calls on this study running now (several: the script's threads race)."""
    pending: tuple[str, ...] = ()
    """Its unfinished trials when the script ended (``Capture.emit`` fills it in)."""
    errors: dict[int, str] = dataclasses.field(default_factory=dict)
    returned: dict[int, Any] = dataclasses.field(default_factory=dict)

    def record(self) -> StudyRecord:
        study = self.study
        name = str(study.study_name)
        return StudyRecord(
            name="" if _AUTO_NAME.fullmatch(name) else name,
            directions=tuple(d.name.lower() for d in study.directions),
            sampler=self.sampler,
            pruner=self.pruner,
            at=self.at,
            n_trials=self.n_trials,
            timeout=self.timeout,
            n_jobs=self.n_jobs,
            capped=self.capped,
            loaded=self.initial > 0,
            pending=self.pending,
            user_attrs=_study_attrs(study),
        )


def _study_attrs(study: Any) -> Mapping[str, Any]:
    """The study's user attributes, JSON-safe and bounded as a trial's are (a storage that
    cannot be read gives none here: its trials' own read reports that)."""
    try:
        attrs = dict(study.user_attrs)
    except Exception:
        return {}
    return saved_attrs(attrs)


_AUTO_NAME = re.compile(r"no-name-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""The name Optuna makes up (from a random UUID) for a study the script did not name: every
run gets another, so it is recorded as "" (unnamed) and not compared."""


class Capture:
    """The hooks on Optuna and what they recorded."""

    def __init__(
        self,
        seed: int,
        seed_samplers: bool,
        trial_seed: Callable[[int], None] | None,
        cap: int | None,
        private_dir: str,
        keep_copies: bool = False,
        resumed: Mapping[str, int] | None = None,
    ) -> None:
        self.seed = seed
        self.seed_samplers = seed_samplers
        self.trial_seed = trial_seed
        self.cap = cap
        self.private_dir = private_dir
        self.keep_copies = keep_copies
        """A resume check: ``private_dir`` is the replicate's, kept between its two processes;
        a copy already there (the first process's) is reused as it was left, never recopied."""
        self.resumed = resumed
        """The resuming process: the trials the first process added to each study (by name),
        read from its ``RESUME_BASE``; None in any other run."""
        self.entries: list[_Entry] = []
        self._by_id: dict[int, _Entry] = {}
        self._samplers: dict[int, tuple[Any, SamplerInfo]] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self.optimizing = 0
        """``optimize`` calls running now (a SystemExit inside one is a crash)."""
        self.exit_in_optimize = False
        self.exit_code: Any = None
        self.on_swallowed: Callable[[CapReached], None] | None = None
        """Ends the run as if the script had stopped at the cap (it does not return): called
        when the script asks again after swallowing ``CapReached`` (a bare ``except:``)."""
        """The code of the first SystemExit raised inside ``optimize``."""
        self.notes: list[str] = []
        self.unseen: str | None = None
        """Why a study the script ran could not be recorded (``_adopt``): a crash."""
        self._private: dict[str, str] = {}
        self.audit: Any = None
        """The entropy audit (``diagnose`` only): told which trial each ask starts."""
        self.tracer: Any = None
        """The line tracer (``diagnose``'s line-trace probe only): traces the objective's call
        for trial ``trace_at[1]`` of study ``trace_at[0]`` (in creation order)."""
        self.trace_at: tuple[int, int] | None = None
        self.traced: Callable[..., Any] | None = None
        """The worker's ``_traced``: wraps an objective so that its first call is traced."""
        self._tracing_ask = False
        """The tracer runs between an ``ask`` and its ``tell`` (an ask/tell loop)."""
        self.watching = True
        """Writes are the script's until it ends (then the worker writes the check's own
        storage, which is not the script's doing)."""
        self._sources: dict[str, tuple[tuple[int, int] | None, ...]] = {}
        """Each storage file copied, with how its files looked then (``storage_changed``)."""
        self.written: list[str] = []
        """Paths in the working folder the script opened for writing, renamed or removed."""
        self._get_trials: Callable[..., Any] | None = None
        """Optuna's own ``Study.get_trials``, kept before the script can replace it."""
        self.pid = os.getpid()
        """The script's own process: a study made in a forked child of it is not recorded."""
        self._child_noted: set[int] = set()
        """Studies a forked child already told on (``_in_child``), in that child."""
        self._study_class: Any = None
        """The Study class the hooks are on (``reloaded``)."""
        self._copied: dict[str, SamplerInfo] = {}
        """How the script built each sampler it pickled with a study (``_remember_sampler``),
        by the digest of its pickled state."""

    def entry(self, study: Any) -> _Entry | None:
        return self._by_id.get(id(study))

    # -- hooks --------------------------------------------------------------------------

    def install(self) -> None:
        """The process hooks now; Optuna's when the script imports it (now, if something
        already did): importing optuna here would load numpy before the script, which then
        could not set its thread variables first, as it can under ``python train.py``."""
        from repro_check.execution.controls import after_import

        self._watch_writes()
        self._arm_children()
        after_import("optuna", self._hook_optuna)

    def _hook_optuna(self, optuna: Any) -> None:
        self._get_trials = optuna.study.Study.get_trials
        self._hook_samplers(optuna)
        self._hook_study(optuna)
        self._hook_storages(optuna)

    def _arm_children(self) -> None:
        """Python processes the script starts (a spawned or forkserver ``multiprocessing``
        worker, ``subprocess.run([sys.executable, ...])``) get none of these hooks: a
        ``sitecustomize`` on their ``PYTHONPATH`` notes each study they create instead, in the
        file a forked child writes too (``child_study``)."""
        site = os.path.join(self.private_dir, "site")
        os.makedirs(site, exist_ok=True)
        with open(os.path.join(site, "sitecustomize.py"), "w", encoding="utf-8") as file:
            file.write(_TRIPWIRE)
        paths = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = site + (os.pathsep + paths if paths else "")
        os.environ[CHILD_ENV] = self._children_file()

    def _watch_writes(self) -> None:
        """Note the files the script writes in the working folder (an audit hook: replicates
        running at once share that folder, and may read each other's files)."""
        folder = os.path.realpath(os.getcwd()) + os.sep
        private = os.path.realpath(self.private_dir) + os.sep
        written = self.written

        def hook(event: str, args: tuple[Any, ...]) -> None:
            if not self.watching or len(written) >= MAX_WRITTEN:
                return
            path = _written_path(event, args)
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

    def _hook_samplers(self, optuna: Any) -> None:
        for name in sorted(dir(optuna.samplers)):
            cls = getattr(optuna.samplers, name)
            if (
                isinstance(cls, type)
                and issubclass(cls, optuna.samplers.BaseSampler)
                and "__init__" in cls.__dict__
            ):
                self._wrap_sampler(cls)

    def _wrap_sampler(self, cls: type) -> None:
        original: Any = cls.__dict__["__init__"]
        signature = inspect.signature(original)
        takes_seed = "seed" in signature.parameters
        capture = self
        local = self._local

        def init(sampler: Any, *args: Any, **kwargs: Any) -> None:
            if getattr(local, "depth", 0) or getattr(local, "internal", False):
                original(sampler, *args, **kwargs)  # built by Optuna or by the check itself
                return
            try:
                bound = signature.bind(sampler, *args, **kwargs)
            except TypeError:
                original(sampler, *args, **kwargs)  # the script's own mistake: Optuna says so
                return
            given = bound.arguments.get("seed")
            seeded = False
            if takes_seed and given is None and capture.seed_samplers:
                bound.arguments["seed"] = capture.seed
                seeded = True
            local.depth = 1
            try:
                original(*bound.args, **bound.kwargs)
            finally:
                local.depth = 0
            seed = given if isinstance(given, int) and not isinstance(given, bool) else None
            info = SamplerInfo(type(sampler).__name__, seed, user_location(), seeded)
            capture._samplers[id(sampler)] = (sampler, info)

        cls.__init__ = init  # type: ignore[misc]

    def _hook_study(self, optuna: Any) -> None:
        study_class = optuna.study.Study
        self._study_class = study_class
        capture = self
        original_init = study_class.__init__

        def init(
            study: Any, study_name: str, storage: Any, sampler: Any = None, pruner: Any = None
        ) -> None:
            default = sampler is None and isinstance(study, study_class)
            capture._local.internal = default  # Optuna's default sampler is not the script's
            try:
                if default and capture.seed_samplers:
                    sampler = optuna.samplers.TPESampler(seed=capture.seed)
                original_init(study, study_name, storage, sampler, pruner)
            finally:
                capture._local.internal = False
            if isinstance(study, study_class):  # a subclass the script defined, too
                capture._register(study, default)

        study_class.__init__ = init
        self._hook_pickling(study_class)
        self._hook_optimize(study_class)
        self._hook_ask(study_class)

    def _hook_pickling(self, study_class: Any) -> None:
        """Studies that never pass through ``Study.__init__``: a ``copy.deepcopy`` of one, a
        study loaded with ``pickle`` or ``joblib`` (Optuna's way to keep an in-memory study),
        one a ``multiprocessing`` worker receives. Each is rebuilt through
        ``Study.__setstate__``, and recorded there, in the order the script made it (in a
        child process, ``ask`` tells on it instead). ``__getstate__`` remembers the sampler a
        study carries, by the bytes of its pickled state, so that a copy made in this process
        names its sampler as the script built it."""
        capture = self
        getstate = getattr(study_class, "__getstate__", None)
        setstate = getattr(study_class, "__setstate__", None)

        def get(study: Any) -> Any:
            state = getstate(study) if getstate is not None else study.__dict__.copy()
            capture._remember_sampler(study)
            return state

        def set_(study: Any, state: Any) -> None:
            if setstate is not None:
                setstate(study, state)
            else:
                study.__dict__.update(state)
            capture._adopt(study, "unpickled")

        study_class.__getstate__ = get
        study_class.__setstate__ = set_

    def _register(self, study: Any, default: bool) -> None:
        at = user_location()
        if os.getpid() != self.pid:
            self._in_child(study, at)
            return
        known = self._known_sampler(study.sampler)
        if known is not None:
            info = known
        else:
            name = type(study.sampler).__name__
            info = SamplerInfo(name, None, None if default else at, default and self.seed_samplers)
        self._record(study, at, info)

    def _adopt(self, study: Any, how: str) -> _Entry | None:
        """Record a study the script holds that no ``Study.__init__`` built (``how``: it was
        unpickled or copied), as it is now; None in another process than the script's, or
        once the script ended. Its sampler is the one the script built when this process
        pickled it (``_remember_sampler``), else ``Cls (unpickled)`` where the script got it:
        the check cannot know how a sampler pickled elsewhere was seeded."""
        if not self.watching or os.getpid() != self.pid:
            return None
        entry = self.entry(study)
        if entry is not None:
            return entry
        at = user_location()
        sampler = getattr(study, "sampler", None)
        info = self._known_sampler(sampler)
        if info is None:
            info = self._copied.get(self._fingerprint(sampler) or "")
        if info is None:
            info = SamplerInfo(f"{type(sampler).__name__} ({how})", None, at, False)
        try:
            return self._record(study, at, info)
        except Exception as exc:  # its storage cannot be read now: Optuna may say why later
            if how == "copied" and self.unseen is None:  # it is asked for trials all the same
                name = str(getattr(study, "study_name", "?"))
                self.unseen = (
                    f"the script ran study {name!r}{f' at {at}' if at else ''}, which "
                    f"repro-check could not read when it met it ({one_line(exc)}): its "
                    "trials cannot be compared"
                )
            return None

    def _record(self, study: Any, at: str | None, info: SamplerInfo) -> _Entry:
        entry = _Entry(
            study=study,
            at=at,
            sampler=info,
            pruner=type(study.pruner).__name__ if study.pruner is not None else None,
            initial=len(self.trials_of(study)),
        )
        entry.limit = self._limit(entry)
        with self._lock:
            found = self._by_id.get(id(study))
            if found is not None and found.study is study:
                return found
            self.entries.append(entry)
            self._by_id[id(study)] = entry
        return entry

    def _known_sampler(self, sampler: Any) -> SamplerInfo | None:
        """How the script built ``sampler``, if this process saw it built."""
        known = self._samplers.get(id(sampler))
        return known[1] if known is not None and known[0] is sampler else None

    def _remember_sampler(self, study: Any) -> None:
        """The script pickles (or deep-copies) ``study``: remember how its sampler was built,
        under the digest of the sampler's pickled state, which a copy of it shares."""
        if os.getpid() != self.pid or getattr(self._local, "fingerprinting", False):
            return
        entry = self.entry(study)
        sampler = getattr(study, "sampler", None)
        info = entry.sampler if entry is not None else self._known_sampler(sampler)
        if info is None:
            return
        found = self._fingerprint(sampler)
        if found is not None:
            self._copied[found] = info

    def _fingerprint(self, sampler: Any) -> str | None:
        """The digest of ``sampler``'s pickled state (None: it cannot be pickled)."""
        if sampler is None:
            return None
        self._local.fingerprinting = True  # a sampler holding a study pickles it too
        try:
            data = pickle.dumps(sampler, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return None
        finally:
            self._local.fingerprinting = False
        return f"{type(sampler).__qualname__}:{hashlib.sha256(data).hexdigest()}"

    def _in_child(self, study: Any, at: str | None, did: str = "created") -> None:
        """A study made, or asked for trials, in a forked child of the script (``os.fork``,
        a ``multiprocessing`` fork worker): those trials live in that process (or race the
        script's through a shared storage) out of the check's sight, so the child leaves a
        line in the private folder and the run cannot count (``outcome``)."""
        if id(study) in self._child_noted:
            return
        self._child_noted.add(id(study))
        name = str(study.study_name)
        shown = "an unnamed study" if _AUTO_NAME.fullmatch(name) else f"study {name!r}"
        where = f" at {at}" if at else ""
        line = f"{did} {shown}{where} in a forked child process (pid {os.getpid()})"
        with contextlib.suppress(OSError), open(self._children_file(), "a") as file:
            file.write(line.replace("\n", " ") + "\n")

    def _children_file(self) -> str:
        return os.path.join(self.private_dir, "child-studies")

    def child_study(self) -> str | None:
        """Why the run cannot count because the script made a study in another process (a
        fork of it, or a Python process it started), or None."""
        try:
            with open(self._children_file()) as file:
                first = file.readline().strip()
        except OSError:
            return None
        if not first:
            return None
        return (
            f"the script {first}: repro-check records the studies of the script's own "
            "process only, so that study's trials cannot be compared; run the study in the "
            "script's own process"
        )

    def _limit(self, entry: _Entry) -> int | None:
        """The cap of ``entry``'s study: ``--trials``; in the resuming process of a resume
        check, a study loaded with trials runs only what makes ``--trials`` in all (a study
        kept in memory starts over: it runs them all)."""
        if self.cap is None:
            return None
        if self.resumed is None or entry.initial == 0:
            return self.cap
        return max(self.cap - self.resumed.get(str(entry.study.study_name), 0), 0)

    def save_base(self) -> None:
        """The first process of a resume check: leave, for the resuming one, how many trials
        this run added to each study (its trials now, less those it held when first opened)."""
        first: dict[str, int] = {}
        added: dict[str, int] = {}
        for entry in self.entries:
            name = str(entry.study.study_name)
            first.setdefault(name, entry.initial)
            added[name] = len(self.trials_of(entry.study)) - first[name]
        with open(os.path.join(self.private_dir, RESUME_BASE), "w", encoding="utf-8") as file:
            json.dump(added, file)

    def restarted(self) -> list[str]:
        """The resuming process: a note for each study that did not load the trials the
        first process ran in it (kept in memory, or in a storage the first did not fill)."""
        if self.resumed is None:
            return []
        notes = []
        for index, entry in enumerate(self.entries):
            name = str(entry.study.study_name)
            if entry.initial > 0 and self.resumed.get(name, 0) > 0:
                continue
            unnamed = _AUTO_NAME.fullmatch(name)
            label = f"study {index}" if unnamed else f"study {index} {name!r}"
            notes.append(
                f"{label}: the restarted script did not load the trials its first run added "
                f"(it keeps the study in memory, or opens it afresh), {RESTARTED}"
            )
        return notes

    def _hook_optimize(self, study_class: Any) -> None:
        original = study_class.optimize
        signature = inspect.signature(original)
        capture = self

        def optimize(study: Any, *args: Any, **kwargs: Any) -> Any:
            entry = capture.entry(study)
            if entry is None:
                return original(study, *args, **kwargs)
            bound = signature.bind(study, *args, **kwargs)
            bound.apply_defaults()
            given = bound.arguments
            n_trials, timeout = given.get("n_trials"), given.get("timeout")
            if isinstance(n_trials, int):
                entry.n_trials = (entry.n_trials or 0) + n_trials
            if timeout is not None:
                entry.timeout = float(timeout)
            n_jobs = _as_int(given.get("n_jobs"))  # numpy's integers too: Optuna takes them
            if n_jobs is not None and n_jobs != 1 and entry.n_jobs == 1:
                entry.n_jobs = n_jobs
            if entry.limit is not None:
                left = entry.limit - entry.asked
                if left <= 0:
                    entry.capped = True
                    return None
                if n_trials is None or n_trials > left:
                    given["n_trials"] = left
                    entry.capped = True
            given["func"] = capture._objective(entry, given["func"])
            with capture._lock:
                capture.optimizing += 1
                entry.active += 1
                capture._concurrent(entry)
            try:
                return original(*bound.args, **bound.kwargs)
            except SystemExit as exc:
                if not capture.exit_in_optimize:
                    capture.exit_in_optimize, capture.exit_code = True, exc.code
                raise
            finally:
                with capture._lock:
                    capture.optimizing -= 1
                    entry.active -= 1

        study_class.optimize = optimize

    def _concurrent(self, entry: _Entry) -> None:
        """Several ``optimize`` calls on one study at once (the script's own threads): its
        trials race as under ``n_jobs`` > 1, so it is recorded as such (never reproducible)."""
        if entry.active < 2 or entry.n_jobs not in (1, entry.active - 1):
            return
        if entry.n_jobs == 1:
            self.notes.append(
                f"study {str(entry.study.study_name)!r}: the script ran several study.optimize "
                "calls on it at once, in its own threads: their trials race each other, so it "
                "is counted as optimize(n_jobs > 1) and cannot be reproducible"
            )
        entry.n_jobs = entry.active

    def trials_of(self, study: Any) -> list[Any]:
        """The study's trials as Optuna's own ``get_trials`` reads them (a script that replaces
        ``Study.get_trials`` does not choose what is compared)."""
        get = self._get_trials if self._get_trials is not None else type(study).get_trials
        return list(get(study, deepcopy=False))

    def readable_trials(self, entry: _Entry) -> list[Any]:
        """``trials_of`` the entry's study, or [] once the script deleted it (``deleted``)."""
        try:
            return self.trials_of(entry.study)
        except KeyError:  # optuna.delete_study: its storage no longer knows the study
            return []

    def reloaded(self) -> str | None:
        """Why the run cannot count because the script reloaded Optuna's study module (its
        new ``Study`` class has none of the hooks: the studies made after it are unseen)."""
        module = sys.modules.get("optuna.study.study")
        if self._study_class is None or getattr(module, "Study", None) is self._study_class:
            return None
        return (
            "the script reloaded Optuna's study module (importlib.reload): studies it made "
            "after that bypass repro-check's hooks, so they cannot be compared"
        )

    def deleted(self) -> str | None:
        """Why the run cannot count because the script deleted a study it made, or None."""
        for entry in self.entries:
            try:
                self.trials_of(entry.study)
            except KeyError:
                return (
                    f"the script deleted study {str(entry.study.study_name)!r} "
                    "(optuna.delete_study) before it ended: its trials can no longer be read, "
                    "so they cannot be compared"
                )
        return None

    def _objective(self, entry: _Entry, func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``func`` (any callable: a function, a callable object, a partial, a lambda) with
        each trial's exception or returned value kept, for the report's failure reasons."""
        import optuna

        call = self._traced_call(entry, func)

        def objective(trial: Any) -> Any:
            try:
                result = call(trial)
            except optuna.TrialPruned:
                raise
            except Exception as exc:
                entry.errors[trial.number] = one_line(exc)
                raise
            entry.returned[trial.number] = result
            return result

        return objective

    def _traced_call(self, entry: _Entry, func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``func``, traced line by line at the one trial ``trace_at`` names (else as is)."""
        if self.tracer is None or self.trace_at is None or self.traced is None:
            return func
        if self.tracer.started:  # traced already (in an earlier optimize call)
            return func
        study_at, trial_at = self.trace_at
        if self.entries.index(entry) != study_at:
            return func
        traced = self.traced(func, self.tracer)

        def call(trial: Any) -> Any:
            if trial.number == trial_at:
                return traced(trial)
            return func(trial)

        return call

    def _hook_ask(self, study_class: Any) -> None:
        original = study_class.ask
        capture = self

        def ask(study: Any, *args: Any, **kwargs: Any) -> Any:
            if os.getpid() != capture.pid:  # the script's study, or one the child unpickled
                capture._in_child(study, user_location(), "asked for trials of")
            entry = capture.entry(study) or capture._adopt(study, "copied")
            if entry is not None:
                with capture._lock:
                    refused = entry.limit is not None and entry.asked >= entry.limit
                    if refused:
                        entry.capped = True
                        entry.refused += 1
                    else:
                        entry.asked += 1
                if refused:
                    reached = CapReached(str(study.study_name))
                    if entry.refused > 1 and capture.on_swallowed is not None:
                        capture.on_swallowed(reached)  # a loop that swallows it would not end
                    raise reached
            trial = original(study, *args, **kwargs)
            if entry is not None and capture.trial_seed is not None:
                capture.trial_seed(trial.number)
            if capture.audit is not None:
                capture.audit.trial = trial.number
            if entry is not None and capture.tracer is not None:
                capture._trace_ask(entry, trial, sys._getframe(1))
            return trial

        study_class.ask = ask
        self._hook_add_trial(study_class)
        if self.tracer is None:  # only diagnose's line-trace probe needs to see tells
            return
        original_tell = study_class.tell

        def tell(study: Any, *args: Any, **kwargs: Any) -> Any:
            if capture._tracing_ask:
                capture.stop_trace()
            return original_tell(study, *args, **kwargs)

        study_class.tell = tell

    def _hook_add_trial(self, study_class: Any) -> None:
        """``add_trial`` (``enqueue_trial`` too) puts trials in a study without ``ask``: a
        study none of the other hooks saw is recorded there, a child's makes the run a crash."""
        original = study_class.add_trial
        capture = self

        def add_trial(study: Any, *args: Any, **kwargs: Any) -> Any:
            if os.getpid() != capture.pid:
                capture._in_child(study, user_location(), "added trials to")
            elif capture.entry(study) is None:
                capture._adopt(study, "copied")
            return original(study, *args, **kwargs)

        study_class.add_trial = add_trial

    def _trace_ask(self, entry: _Entry, trial: Any, caller: FrameType) -> None:
        """An ask/tell loop in the script's own code: trace its lines for the trial
        ``trace_at`` names, from ``ask`` to ``tell`` (or the next ``ask``, or the end).
        ``optimize``'s own asks (Optuna's frame) are traced through the objective instead."""
        if self._tracing_ask:
            self.stop_trace()
        at = self.trace_at
        if self.tracer.started or at is None or self.entries.index(entry) != at[0]:
            return
        if trial.number != at[1] or not is_user_file(caller.f_code.co_filename):
            return
        self._tracing_ask = True
        self.tracer.torch_ops.start()
        self.tracer.start(follow=caller)

    def stop_trace(self) -> None:
        """End an ask/tell trace (idempotent)."""
        if self._tracing_ask:
            self._tracing_ask = False
            self.tracer.stop()
            self.tracer.torch_ops.stop()

    def _hook_storages(self, optuna: Any) -> None:
        capture = self
        rdb = optuna.storages.RDBStorage
        rdb_init = rdb.__init__

        def rdb_private(storage: Any, url: str, *args: Any, **kwargs: Any) -> None:
            if not capture.watching:  # the script has ended: the check's own storage
                rdb_init(storage, url, *args, **kwargs)
                return
            private = capture.private_url(url)
            if private != url and sqlite_file(url) is None:
                args, kwargs = (), {k: v for k, v in kwargs.items() if k != "engine_kwargs"}
            rdb_init(storage, private, *args, **kwargs)

        rdb.__init__ = rdb_private
        rdb_setstate = rdb.__setstate__

        def rdb_unpickled(storage: Any, state: Any) -> None:
            # a study unpickled with its storage (pickled before the check, or by the script)
            url = state.get("url") if isinstance(state, dict) else None
            if isinstance(url, str) and capture.watching and os.getpid() == capture.pid:
                private = capture.private_url(url)
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
                capture.private_copy(str(file_path), "journal") if capture.watching else file_path
            )
            journal_init(backend, path, *args, **kwargs)

        backend_class.__init__ = journal_private  # type: ignore[method-assign,assignment]
        locks = (journal.JournalFileSymlinkLock, journal.JournalFileOpenLock)

        def journal_unpickled(backend: Any, state: Any) -> None:
            path = state.get("_file_path") if isinstance(state, dict) else None
            if isinstance(path, str) and capture.watching and os.getpid() == capture.pid:
                private = capture.private_copy(path, "journal")
                if private != path:
                    state = {**state, "_file_path": private}
                    lock = state.get("_lock")
                    if type(lock) in locks:
                        state["_lock"] = type(lock)(private, lock.grace_period)
                    if not os.path.exists(private):
                        open(private, "ab").close()  # as the backend's __init__ does
            backend.__dict__.update(state)

        backend_class.__setstate__ = journal_unpickled  # type: ignore[attr-defined]

    # -- private storages -----------------------------------------------------------------

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

    # -- the end ----------------------------------------------------------------------------

    def emit(self, out: Any, readable: Callable[[Any], Any]) -> int:
        """Stream every study's trials, then its ``study_done``; returns the studies' count."""
        for index, entry in enumerate(self.entries):
            trials = self.readable_trials(entry)
            finished = [t for t in trials if t.state.is_finished()]
            entry.pending = tuple(pending_key(t) for t in trials if not t.state.is_finished())
            for frozen in sorted(finished, key=lambda t: t.number):
                record = TrialRecord.from_frozen(frozen, error=self._error(entry, frozen))
                data = record.to_dict()
                data["user_attrs"] = readable(data["user_attrs"])
                if data["error"] is not None:
                    data["error"] = readable(data["error"])
                out.emit(Trial(study=index, trial=data))
            info = entry.record().to_dict(with_trials=False)
            info.pop("trials")
            out.emit(
                StudyDone(
                    study=index,
                    emitted=len(finished),
                    count=len(finished),
                    digest=trials_digest((int(t.number), t.state.name) for t in finished),
                    stopped=False,
                    info=readable(info),
                )
            )
        return len(self.entries)

    @staticmethod
    def _error(entry: _Entry, frozen: Any) -> str | None:
        if frozen.state.name != "FAIL":
            return None
        error = entry.errors.get(frozen.number)
        if error is None and frozen.number in entry.returned:
            returned = entry.returned[frozen.number]
            error = f"objective returned {returned!r}"
            if returned is None:
                error += " (is a `return` missing?)"
        return error

    def storage_changed(self) -> str | None:
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

    def running_trial(self) -> str | None:
        """``trial N of study 'x'`` for a trial asked and never told, else None."""
        for entry in self.entries:
            for t in self.readable_trials(entry):
                if t.state.name == "RUNNING":
                    return f"trial {t.number} of study {entry.study.study_name!r}"
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


def read_base(folder: str) -> dict[str, int]:
    """What ``Capture.save_base`` left in ``folder`` (nothing: no study held trials)."""
    try:
        with open(os.path.join(folder, RESUME_BASE), encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}


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


def _as_int(value: Any) -> int | None:
    """``value`` as an int where Python would take it as one (numpy's integers too), else
    None (bools are not counts)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def finish() -> None:
    """What ``python`` does after the script's last line, before it exits: join the
    non-daemon threads (after the hooks that wake them, such as an executor left open's), then
    run the ``atexit`` handlers. Studies the script optimizes there are part of what it runs."""
    import atexit

    hooks = getattr(threading, "_threading_atexits", None)
    if isinstance(hooks, list):
        for call in reversed(hooks):
            with contextlib.suppress(Exception):  # as `python` would, it carries on
                call()
        hooks.clear()
    _join_threads()
    atexit._run_exitfuncs()
    _join_threads()


def _join_threads() -> None:
    current = threading.current_thread()
    while True:
        alive = [t for t in threading.enumerate() if t is not current and not t.daemon]
        if not alive:
            return
        for thread in alive:
            thread.join()


_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_CHANGES = frozenset({"os.rename", "os.replace", "os.remove", "os.mkdir"})


def _written_path(event: str, args: tuple[Any, ...]) -> Any:
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


def run(spec: ScriptSpec) -> None:
    """Run the script (``path`` or ``module``) with ``args``, as ``python`` would: a fresh
    ``__main__``, ``sys.argv``, ``sys.path[0]`` the script's folder (the current folder for
    ``-m``)."""
    args = list(spec.args)
    path = spec.path
    if path:
        if not os.path.isfile(path):
            from repro_check.errors import TargetError

            raise TargetError(f"no such file: {path}")
        sys.argv = [path, *args]
        folder = os.path.dirname(os.path.abspath(path))
        sys.path.insert(0, folder)
        add_user_root(folder)
        _run_file(path)
    else:
        module = str(spec.module)
        sys.argv = [module, *args]
        sys.path.insert(0, os.getcwd())
        problem = _missing_module(module)
        if problem is not None:
            from repro_check.errors import TargetError

            raise TargetError(problem)
        _own_package(module)
        runpy.run_module(module, run_name="__main__", alter_sys=True)


def _run_file(path: str) -> None:
    """Run the file as ``python path`` runs it: a fresh ``__main__`` whose ``__file__`` (and
    code, so tracebacks) name the absolute path, ``__package__`` and ``__spec__`` None, and a
    source loader (``runpy.run_path`` would keep the path as typed and ``__package__`` "")."""
    import builtins
    import importlib.machinery
    import types

    full = os.path.abspath(path)
    with open(full, "rb") as file:
        source = file.read()
    code = compile(source, full, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=full,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", full),
        __package__=None,
        __spec__=None,
        __builtins__=builtins,
    )
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _missing_module(module: str) -> str | None:
    """Why ``-m module`` cannot run at all (no such module), or None."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return f"no such module: {module!r}"
        return None  # a package's __init__ imports something missing: the script's error
    except (ImportError, ValueError):
        return None
    if found is None:
        return f"no such module: {module!r}"
    if found.submodule_search_locations is not None:
        main = importlib.util.find_spec(f"{module}.__main__")
        if main is None:
            return f"{module!r} is a package without __main__: it cannot be run with -m"
    return None


def _own_package(module: str) -> None:
    """The folder of an ``-m`` module is the user's code, wherever it is installed."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return  # runpy says what is wrong, in its own words
    if found is not None and found.origin:
        add_user_root(os.path.dirname(found.origin))


def outcome(exc: BaseException | None, capture: Capture) -> str | None:
    """Why the script's end makes the run a crash (one line), or None when it ended well: it
    returned, hit the ``--trials`` cap in an ask/tell loop, or called ``sys.exit(0)`` with no
    study running."""
    changed = (
        capture.unseen
        or capture.storage_changed()
        or capture.child_study()
        or capture.reloaded()
        or capture.deleted()
    )
    if changed is not None:
        return changed
    if capture.optimizing:
        return (
            "the script ended while study.optimize still ran in a daemon thread: `python` "
            "would kill it at exit, so its trials depend on timing"
        )
    if capture.exit_in_optimize and not isinstance(exc, SystemExit):
        running = capture.running_trial()
        during = f" during {running}" if running else ""
        return (
            f"sys.exit({capture.exit_code!r}) was called inside study.optimize{during} and did "
            "not end the script (it ended a thread, or the script caught it): the study "
            "stopped before it finished"
        )
    if exc is None or isinstance(exc, CapReached):
        return None
    if isinstance(exc, SystemExit):
        code = exc.code
        if code not in (None, 0):
            return f"the script called sys.exit({code!r})"
        running = capture.running_trial()
        if capture.exit_in_optimize or running is not None:
            during = f" during {running}" if running else " inside study.optimize"
            return f"the script called sys.exit({code!r}){during}, before its study finished"
        return None
    where = last_user_line(exc)
    return f"the script raised {one_line(exc)}" + (f" at {where}" if where else "")


def private_dir() -> str:
    return tempfile.mkdtemp(prefix="repro-check-script-")
