"""The entropy audit: in ``diagnose``'s workers, every call the user's own code makes into a
source of run-to-run variation, with its line and the trials it happened in.

Each source is wrapped in this process only (never in ``run``). A call is recorded when the
code that made it is the user's: the first frame out from the call that is not the standard
library (``secrets`` calling ``os.urandom`` is still the user's ``secrets.token_hex`` line) is
in a user file. A library the user calls (Optuna's own clock reads, a framework's threads) is
not the user's line and is not recorded. Per trial, the audit also notes whether the global
``random``/NumPy/torch streams were consumed: their state changed from before to after the
trial, or it was drawn from and then put back (``random.setstate``, ``np.random.set_state``,
``torch.set_rng_state``, which ``torch.random.fork_rng`` calls: the state there is compared
with the trial's first one before the restore).

A source that is a C type's method cannot be wrapped by ``setattr`` on its type. Classmethods
(``datetime.datetime.now/utcnow``, ``date.today``) are wrapped in the type's own attribute dict
(``_set_on_type``): ``datetime.datetime`` and ``datetime.date`` stay the real classes, which C
extensions (pandas) subclass by the module's attribute when they are imported. The others
(``np.random.RandomState()``, ``SeedSequence()``, ``torch.Generator().seed()``) are reached by
a module attribute (``numpy.random.RandomState``, ``torch.Generator``) that is replaced by a
stand-in subclass (``_stand_in``) that records, then delegates. The stand-in passes for the
real type (``isinstance``, ``issubclass``, ``==`` and hashing as a dict key), and objects built
through it are the real type's (a torch generator excepted: its ``seed`` is an instance method,
so its generators are the stand-in's), so pickling, arithmetic and comparison are untouched.
torch and joblib are wrapped only once user code imports them (never imported here).

Randomness drawn inside a library because the user left its seed out (an estimator without
``random_state``, ``train_test_split`` without it) and the user's own draws from the global
streams are sites too, of their own kinds (``audit_library``: ``library``, ``global``), seen
here and in the Python processes the user's code starts (joblib's loky workers), whose
reports are read at each trial's end.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import linecache
import os
import sys
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any

from repro_check.execution.userframes import is_user_file, shown_path

MAX_SITES = 100
"""The most distinct (source, line) sites recorded per run."""
MAX_TRIALS = 50
"""The most trial numbers kept per site."""

CERTAIN = "random"
"""A source that differs in every process, whatever the seeds (os.urandom, an unseeded
generator): where the user's code calls one, the results can differ."""
CLOCK = "clock"
"""A clock read: varies with the machine's speed; it changes results only when they depend on
it (a training time budget), so it is a suspect, not a proof."""
PARALLEL = "parallel"
"""Threads or processes: results may depend on their scheduling."""


@dataclass
class Site:
    """One place in the user's code that called one source."""

    source: str
    kind: str
    file: str
    line: int
    text: str
    trials: list[int] = field(default_factory=list)
    calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "text": self.text[:200],
            "trials": self.trials,
            "calls": self.calls,
        }


class Audit:
    """What the wrapped sources recorded in this process."""

    def __init__(self) -> None:
        self.sites: dict[tuple[str, str, int], Site] = {}
        self._trial: int | None = None
        self.library: Any = None
        """The hooks on randomness drawn inside libraries (``audit_library.LibraryAudit``),
        here and in the processes the user's code starts; None until ``install``."""
        self.consumed: dict[str, list[int]] = {}
        """Global stream name -> trials in which it was consumed."""
        self.on_new: Callable[[Site], None] | None = None
        """Told of each new site at once (the worker streams it: a run stopped early, or
        killed, still says where its noise came from)."""
        self._lock = threading.Lock()
        self._mark: dict[str, bytes] | None = None
        """Each global stream's digest where the running phase began (or last restored)."""
        self._drawn: set[str] = set()
        """Streams drawn from and then put back in the running phase."""
        paths = sysconfig.get_paths()
        self._stdlib = tuple(
            os.path.realpath(paths[key]) + os.sep for key in ("stdlib", "platstdlib")
        )
        self._packages = tuple(
            os.path.realpath(paths[key]) + os.sep for key in ("purelib", "platlib")
        )
        """In a virtual environment platstdlib (venv/lib/pythonX.Y) holds site-packages:
        a package's frame there is a library's, not the standard library's."""

    def _caller(self) -> tuple[str, int] | None:
        """(file, line) of the user code that called the source, or None when the first
        non-standard-library frame out from it is a library's (or this module's)."""
        frame: FrameType | None = sys._getframe(3)  # record <- the wrapper <- the caller
        while frame is not None:
            name = frame.f_code.co_filename
            real = os.path.realpath(name) if not name.startswith("<") else name
            stdlib = real.startswith(self._stdlib) and not real.startswith(self._packages)
            if not stdlib:
                return (name, frame.f_lineno) if is_user_file(name) else None
            frame = frame.f_back
        return None

    @property
    def trial(self) -> int | None:
        """The trial running now (set by the worker, or the script's hooks, around each)."""
        return self._trial

    @trial.setter
    def trial(self, number: int | None) -> None:
        if number != self._trial and self.library is not None:
            self.library.next_trial(number)  # the children's draws so far: the trial that ran
        self._trial = number

    def record(self, source: str, kind: str) -> None:
        found = self._caller()
        if found is None:
            return
        self.add_site(source, kind, *found)

    def add_site(self, source: str, kind: str, file: str, line: int, before: bool = False) -> None:
        """Record a call of ``source`` at the user's ``file:line`` in the running trial.
        ``before``: one outside any trial is noted as trial -1 (a draw before the study
        started: where seeding it must go first)."""
        key = (source, file, line)
        with self._lock:
            site = self.sites.get(key)
            if site is None:
                if len(self.sites) >= MAX_SITES:
                    return
                text = linecache.getline(file, line).strip()
                site = self.sites[key] = Site(source, kind, shown_path(file), line, text)
                new = True
            else:
                new = False
            site.calls += 1
            trial = self._trial if self._trial is not None or not before else -1
            if trial is not None and trial not in site.trials and len(site.trials) < MAX_TRIALS:
                site.trials.append(trial)
            if new and self.on_new is not None:
                self.on_new(site)

    # -- per-trial global streams -----------------------------------------------------------

    def streams(self) -> dict[str, bytes]:
        """A digest of each global stream's state now, which also starts a phase (a trial,
        or the import): a stream put back to an earlier state (``set_state``) within it is
        compared with this one first (``restoring``)."""
        digests = _digests()
        with self._lock:
            self._mark, self._drawn = dict(digests), set()
        return digests

    def restoring(self, name: str) -> None:
        """Global stream ``name`` is about to be set to a saved state: if it moved since the
        phase began (or since its last restore), it was drawn from, whatever state it is put
        back to (``st = get_state(); x = rand(); set_state(st)`` leaves no trace in the
        state after the trial, yet ``x`` depends on the seeding)."""
        mark = self._mark
        if mark is None or name not in mark:
            return
        if _digests(name).get(name, mark[name]) != mark[name]:
            with self._lock:
                self._drawn.add(name)

    def restored(self, name: str) -> None:
        """The restore is done: later draws are measured from the state it set."""
        mark = self._mark
        if mark is not None and name in mark:
            mark.update(_digests(name))

    def imported(self, before: dict[str, bytes]) -> None:
        """The target was imported: a global stream it consumed at import (module-level
        ``np.random.rand``) counts as consumed, at trial -1."""
        self.trial_ended(-1, before)

    def trial_ended(self, number: int, before: dict[str, bytes]) -> None:
        """A stream counts as consumed in the phase when its state moved, or when it was
        drawn from and then put back (``restoring``)."""
        if self.library is not None and number >= 0:
            self.library.drain()  # before the worker clears the trial: it is this one's
        after = _digests()
        with self._lock:
            drawn, self._mark, self._drawn = self._drawn, None, set()
        for name, digest in after.items():
            if before.get(name, digest) != digest or name in drawn:
                trials = self.consumed.setdefault(name, [])
                if len(trials) < MAX_TRIALS:
                    trials.append(number)

    def to_dict(self) -> dict[str, Any]:
        if self.library is not None:
            self.library.close()  # the children's last draws, then their folder goes
        return {
            "sites": [site.to_dict() for site in self.sites.values()],
            "consumed": {name: trials for name, trials in self.consumed.items()},
        }


def _digests(only: str | None = None) -> dict[str, bytes]:
    """A digest of each global stream's state now (``random``, NumPy's, torch's CPU one;
    ``only``: just that one)."""
    import random

    states = {}
    if only in (None, "random"):
        states["random"] = repr(random.getstate()).encode()
    numpy = sys.modules.get("numpy")
    if numpy is not None and only in (None, "numpy"):
        _kind, keys, pos, *_ = numpy.random.get_state()
        states["numpy"] = keys.tobytes() + str(pos).encode()
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_rng_state") and only in (None, "torch"):
        states["torch"] = bytes(torch.get_rng_state().numpy().tobytes())
    return {k: hashlib.blake2b(v, digest_size=16).digest() for k, v in states.items()}


def _wrap_restore(audit: Audit, owner: Any, name: str, stream: str) -> None:
    """``owner.name`` sets global stream ``stream`` to a saved state: tell the audit before
    (was it drawn from?) and after (measure from the restored state)."""
    original = getattr(owner, name, None)
    if original is None or getattr(original, "_repro_check_audit", False):
        return

    @functools.wraps(original)
    def audited(*args: Any, **kwargs: Any) -> Any:
        audit.restoring(stream)
        try:
            return original(*args, **kwargs)
        finally:
            audit.restored(stream)

    audited._repro_check_audit = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError, TypeError):
        setattr(owner, name, audited)


def _wrap(
    audit: Audit,
    owner: Any,
    name: str,
    source: str,
    kind: str,
    when: Callable[..., bool] | None = None,
) -> None:
    original = getattr(owner, name, None)
    if original is None or getattr(original, "_repro_check_audit", False):
        return

    @functools.wraps(original)
    def audited(*args: Any, **kwargs: Any) -> Any:
        if when is None or when(*args, **kwargs):
            audit.record(source, kind)
        return original(*args, **kwargs)

    audited._repro_check_audit = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError, TypeError):  # a C type: left alone
        setattr(owner, name, audited)


def _unseeded(*args: Any, **kwargs: Any) -> bool:
    """Called without a seed (first argument, or ``seed=``, absent or None)."""
    seed = args[0] if args else kwargs.get("seed", kwargs.get("x"))
    return seed is None


def _stand_in(real: type, name: str, module: str, body: dict[str, Any]) -> Any:
    """A subclass of ``real`` to put where user code finds ``real``, that passes for it:
    ``isinstance(x, stand_in)`` and ``issubclass(c, stand_in)`` answer as for ``real``, and
    ``stand_in == real`` with ``real``'s hash (a dict keyed by one finds the other). Pickled, it
    is ``module.name``: elsewhere that is the real type again. A user's own subclass of it is
    an ordinary subclass."""
    base: type = type(real)  # torch.Generator's is not ``type``
    made: list[type] = []

    class StandIn(base):  # type: ignore[misc]
        def __instancecheck__(cls, obj: object) -> bool:
            if made and cls is made[0]:
                return isinstance(obj, real)
            return super().__instancecheck__(obj)  # type: ignore[no-any-return]

        def __subclasscheck__(cls, sub: type) -> bool:
            if made and cls is made[0]:
                return issubclass(sub, real)
            return super().__subclasscheck__(sub)  # type: ignore[no-any-return]

        def __eq__(cls, other: object) -> bool:
            if made and cls is made[0] and other is real:
                return True
            return super().__eq__(other)  # type: ignore[no-any-return]

        def __hash__(cls) -> int:
            return hash(real) if made and cls is made[0] else super().__hash__()

    namespace = {"__module__": module, "__qualname__": name, "_repro_check_audit": True, **body}
    stand_in = StandIn(name, (real,), namespace)
    made.append(stand_in)
    return stand_in


def _set_on_type(owner: type, name: str, value: Any) -> None:
    """``owner.name = value`` on a C type too: a built-in type refuses ``setattr``, so its
    attribute dict (behind the read-only ``__dict__`` proxy) takes the value and the type's
    method cache is told (``PyType_Modified``). The type stays the same object."""
    try:
        setattr(owner, name, value)
        return
    except (AttributeError, TypeError):
        pass
    import ctypes
    import gc

    (attrs,) = (r for r in gc.get_referents(owner.__dict__) if isinstance(r, dict))
    attrs[name] = value
    ctypes.pythonapi.PyType_Modified(ctypes.py_object(owner))


def _wrap_datetime(audit: Audit) -> None:
    """``datetime.datetime.now/utcnow/today`` and ``datetime.date.today``: C classmethods,
    wrapped on the real types themselves (``_set_on_type``). ``datetime.date`` and
    ``datetime.datetime`` stay the classes they are: a C extension that subclasses them
    (pandas' ``Timestamp``, ``NaT``) finds its base at import by the module's attribute, and a
    stand-in there broke it (pandas 3 failed to import). A subclass inherits the wrapper
    unless it defines its own (pandas' do: a library's clock reads are not the user's)."""
    import datetime as module

    def classmethod_wrapper(owner: type, name: str, source: Callable[[type], str]) -> None:
        original = owner.__dict__.get(name)
        if original is None or getattr(original, "_repro_check_audit", False):
            return

        def audited(cls: type, *args: Any, **kwargs: Any) -> Any:
            audit.record(source(cls), CLOCK)
            return original.__get__(None, cls)(*args, **kwargs)

        audited.__name__ = audited.__qualname__ = name
        wrapper: classmethod[Any, ..., Any] = classmethod(audited)
        wrapper._repro_check_audit = True  # type: ignore[attr-defined]
        _set_on_type(owner, name, wrapper)

    def today(cls: type) -> str:
        return "datetime.today" if issubclass(cls, module.datetime) else "date.today"

    classmethod_wrapper(module.datetime, "now", lambda cls: "datetime.now")
    classmethod_wrapper(module.datetime, "utcnow", lambda cls: "datetime.utcnow")
    # datetime.today is date.today, inherited (it builds ``cls`` from time.time())
    classmethod_wrapper(module.date, "today", today)
    if "today" in module.datetime.__dict__:  # the pure-Python datetime defines its own
        classmethod_wrapper(module.datetime, "today", lambda cls: "datetime.today")


def _seeded_stand_in(audit: Audit, owner: Any, name: str, source: str, seed_name: str) -> None:
    """``owner.name`` (a C type built as ``name(seed)``) records when built without a seed;
    what it builds is the real type's."""
    real = getattr(owner, name, None)
    if real is None or getattr(real, "_repro_check_audit", False):
        return

    def new(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if (args[0] if args else kwargs.get(seed_name)) is None:
            audit.record(source, CERTAIN)
        if cls is stand_in:
            return real(*args, **kwargs)
        return real.__new__(cls, *args, **kwargs)

    stand_in = _stand_in(real, name, owner.__name__, {"__new__": new})
    setattr(owner, name, stand_in)


def _wrap_numpy(audit: Audit, numpy: ModuleType) -> None:
    _wrap(
        audit,
        numpy.random,
        "default_rng",
        "np.random.default_rng() without a seed",
        CERTAIN,
        _unseeded,
    )
    _wrap(audit, numpy.random, "seed", "np.random.seed() without a seed", CERTAIN, _unseeded)
    for owner in (numpy.random, getattr(numpy.random, "mtrand", None)):
        _wrap_restore(audit, owner, "set_state", "numpy")
    _seeded_stand_in(
        audit, numpy.random, "RandomState", "np.random.RandomState() without a seed", "seed"
    )
    _seeded_stand_in(
        audit, numpy.random, "SeedSequence", "np.random.SeedSequence() without entropy", "entropy"
    )


def _wrap_torch(audit: Audit, torch: ModuleType) -> None:
    """``torch.seed()`` and ``torch.Generator().seed()``: both seed from the OS. The generator
    is a C type and ``seed`` its method, so ``torch.Generator`` becomes a stand-in whose
    generators are its own (they pass anywhere a generator goes: a subclass)."""
    _wrap(audit, torch, "seed", "torch.seed()", CERTAIN)
    _wrap(audit, getattr(torch, "random", None), "seed", "torch.seed()", CERTAIN)
    for owner in (torch, getattr(torch, "random", None)):  # fork_rng restores torch.set_rng_state
        _wrap_restore(audit, owner, "set_rng_state", "torch")
    real = getattr(torch, "Generator", None)
    if real is None or getattr(real, "_repro_check_audit", False):
        return

    def seed(self: Any) -> Any:
        audit.record("torch.Generator().seed()", CERTAIN)
        return real.seed(self)

    torch.Generator = _stand_in(real, "Generator", "torch", {"seed": seed})  # type: ignore[attr-defined]


def _wrap_joblib(audit: Audit, joblib: ModuleType) -> None:
    """``joblib.Parallel`` with ``n_jobs`` other than 1 (as joblib resolved it, a
    ``parallel_config`` included)."""
    parallel = getattr(joblib, "Parallel", None)
    original = getattr(parallel, "__init__", None)
    if parallel is None or original is None or getattr(original, "_repro_check_audit", False):
        return

    @functools.wraps(original)
    def audited(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if getattr(self, "n_jobs", 1) != 1:
            audit.record("joblib.Parallel(n_jobs != 1)", PARALLEL)

    audited._repro_check_audit = True  # type: ignore[attr-defined]
    parallel.__init__ = audited


def install() -> Audit:
    """Wrap every source; returns the ``Audit`` they record into."""
    import random
    import secrets
    import time
    import uuid

    audit = Audit()
    _wrap(audit, os, "urandom", "os.urandom", CERTAIN)
    for name in ("token_bytes", "token_hex", "token_urlsafe", "randbelow", "randbits", "choice"):
        _wrap(audit, secrets, name, f"secrets.{name}", CERTAIN)
    for name in ("random", "getrandbits"):
        _wrap(audit, random.SystemRandom, name, "random.SystemRandom", CERTAIN)
    _wrap(audit, uuid, "uuid4", "uuid.uuid4", CERTAIN)
    _wrap(audit, uuid, "uuid1", "uuid.uuid1", CERTAIN)
    _wrap(
        audit,
        random.Random,
        "__init__",
        "random.Random() without a seed",
        CERTAIN,
        lambda self, x=None, *a, **k: x is None and type(self) is not random.SystemRandom,
    )
    _wrap(
        audit,
        random,
        "seed",
        "random.seed() without a seed",
        CERTAIN,
        lambda a=None, *args, **kwargs: a is None,
    )
    _wrap_restore(audit, random, "setstate", "random")
    for name in (
        "time",
        "time_ns",
        "perf_counter",
        "perf_counter_ns",
        "monotonic",
        "monotonic_ns",
        "process_time",
    ):
        _wrap(audit, time, name, f"time.{name}", CLOCK)
    _wrap(audit, threading.Thread, "start", "threading.Thread.start", PARALLEL)
    import concurrent.futures as futures

    _wrap(audit, futures.ThreadPoolExecutor, "__init__", "ThreadPoolExecutor", PARALLEL)
    _wrap(audit, futures.ProcessPoolExecutor, "__init__", "ProcessPoolExecutor", PARALLEL)
    import multiprocessing.pool

    _wrap(audit, multiprocessing.pool.Pool, "__init__", "multiprocessing.Pool", PARALLEL)
    import multiprocessing.process

    _wrap(
        audit,
        multiprocessing.process.BaseProcess,
        "start",
        "multiprocessing.Process.start",
        PARALLEL,
    )
    _wrap_datetime(audit)
    # wrapped when user code imports them: importing them here would cost a worker that never
    # uses them (torch: seconds), and numpy must load after a script sets its thread variables
    from repro_check.execution.controls import after_import

    after_import("numpy", lambda numpy: _wrap_numpy(audit, numpy))
    after_import("torch", lambda torch: _wrap_torch(audit, torch))
    after_import("joblib", lambda joblib: _wrap_joblib(audit, joblib))
    _install_library_hooks(audit)
    return audit


def _install_library_hooks(audit: Audit) -> None:
    """Randomness drawn inside libraries (``audit_library``): a draw the user's line made or
    caused is a site of its own kind (``global``, ``library``), in this process and in the
    Python processes the user's code starts."""
    from repro_check.execution.audit_library import Attributed, LibraryAudit

    def add(site: Attributed, drained: bool) -> None:
        audit.add_site(site.source, site.kind, site.file, site.line, before=not drained)

    audit.library = LibraryAudit(add)
    audit.library.install()
