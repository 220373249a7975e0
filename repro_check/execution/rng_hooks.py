"""Hooks that see randomness drawn inside a library because a seed was left out: a
scikit-learn estimator or splitter whose ``random_state`` is None asks
``check_random_state(None)`` for NumPy's global stream, a function called without its
``seed=`` draws from ``np.random`` or ``random``. ``diagnose``'s workers only (the entropy
audit, ``execution.audit``), never ``run``.

Each draw becomes one raw event: what drew (``check_random_state(None)``, ``np.random.normal``),
the stack out from the call (file, line, function, and which of its ``random_state``/``seed``/
``random_seed`` parameters are None), and the object that drew, when it is one whose seed
attribute is None (its class, that attribute, and the stack where it was built). Which frame
is the user's line is decided by whoever reads the events (``audit_library``), not here: this
module imports nothing but the standard library, because its file is also copied into the
``sitecustomize`` folder the audit puts on the ``PYTHONPATH`` of the Python processes the
user's code starts (joblib's loky workers), where repro-check may not be importable. There
its events go to a file the audit reads (``install_in_child``).

Where an object was built is known because ``sklearn.base.BaseEstimator`` gets a ``__new__``
(as sklearn loads) that keeps the building stack, weakly keyed by the object; a clone
(``sklearn.base.clone``) inherits its original's, so an estimator cloned inside
``cross_val_score`` is still the one the user built at their line. ``check_random_state`` is
wrapped as ``sklearn.utils.validation`` finishes loading, before any other sklearn module
binds it by name.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

SEED_PARAMS = ("random_state", "seed", "random_seed")
"""The parameter names that seed a library's randomness (None: the global stream)."""
MAX_DEPTH = 48
"""The most frames kept per stack."""
MAX_EVENTS = 200
"""The most events a child process reports (the reader dedupes them into sites)."""
REFRESH_EVERY = 64
"""A child reads the audit's epoch once in this many draws."""
MAX_KEYS = 10_000
"""The most distinct draws remembered as already reported."""
CHILD_ENV = "REPRO_CHECK_LIBRARY_RNG"
"""The file a child process appends its events to, one JSON object a line."""

RANDOM_DRAWS = (
    "random", "uniform", "randint", "randrange", "choice", "choices", "shuffle", "sample",
    "gauss", "normalvariate", "lognormvariate", "expovariate", "vonmisesvariate",
    "gammavariate", "triangular", "betavariate", "paretovariate", "weibullvariate",
    "getrandbits", "randbytes", "binomialvariate",
)  # fmt: skip
"""``random``'s module functions that draw from its global stream."""
NUMPY_DRAWS = (
    "beta", "binomial", "bytes", "chisquare", "choice", "dirichlet", "exponential", "f",
    "gamma", "geometric", "gumbel", "hypergeometric", "laplace", "logistic", "lognormal",
    "logseries", "multinomial", "multivariate_normal", "negative_binomial",
    "noncentral_chisquare", "noncentral_f", "normal", "pareto", "permutation", "poisson",
    "power", "rand", "randint", "randn", "random", "random_integers", "random_sample", "ranf",
    "rayleigh", "sample", "shuffle", "standard_cauchy", "standard_exponential",
    "standard_gamma", "standard_normal", "standard_t", "triangular", "uniform", "vonmises",
    "wald", "weibull", "zipf",
)  # fmt: skip
"""``np.random``'s module functions that draw from NumPy's global stream."""

IGNORED_UNLESS = {"sklearn.model_selection": "shuffle", "sklearn.svm": "probability"}
"""Where sklearn documents ``random_state`` as ignored when a flag is off (a splitter that
does not shuffle, an SVC without probability estimates): a draw then changes no result. Only
those modules' classes: ``MLPClassifier(shuffle=False)`` still draws its initial weights."""
OFF = (False, "deprecated")
"""A flag's values that mean off (sklearn 1.9's SVC defaults ``probability`` to
``"deprecated"``, which behaves as False)."""
SPLITTER_BASES = ("BaseCrossValidator", "BaseShuffleSplit", "_RepeatedSplits")
"""sklearn's splitter bases (``sklearn.model_selection._split``): not estimators."""
CLONES = ("clone", "_clone_parametrized", "__sklearn_clone__")
"""sklearn's functions that build a copy of ``estimator`` (a local of theirs)."""

Frame = list[Any]
"""[file, line, function, [its seed parameters that are None]]."""


def stack_of(frame: FrameType | None) -> list[Frame]:
    """The stack out from ``frame`` (innermost first), at most ``MAX_DEPTH`` frames."""
    found: list[Frame] = []
    while frame is not None and len(found) < MAX_DEPTH:
        code = frame.f_code
        params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        unset = [p for p in SEED_PARAMS if p in params and frame.f_locals.get(p, 0) is None]
        found.append([code.co_filename, frame.f_lineno, code.co_name, unset])
        frame = frame.f_back
    return found


def unseeded_attribute(obj: Any) -> str | None:
    """The seed attribute of ``obj`` that is None (``random_state``), or None."""
    if obj is None or isinstance(obj, type | ModuleType):
        return None
    for name in SEED_PARAMS:
        with contextlib.suppress(Exception):  # a property may raise
            if name in getattr(obj, "__dict__", {}) and getattr(obj, name) is None:
                return name
    return None


def _seed_params_of(cls: type) -> tuple[str, ...]:
    """The seed parameters ``cls(...)`` takes (its ``__init__``'s, unwrapped)."""
    init = getattr(cls, "__init__", None)
    init = getattr(init, "__wrapped__", init)
    code = getattr(init, "__code__", None)
    if code is None:
        return ()
    params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return tuple(p for p in SEED_PARAMS if p in params)


class LibraryHooks:
    """The hooks of one process; each event goes to ``sink`` (a dict, JSON-ready)."""

    def __init__(
        self,
        sink: Callable[[dict[str, Any]], None],
        own_line: Callable[[str], bool] | None = None,
        limit: int | None = None,
        refresh: Callable[[], object] | None = None,
    ) -> None:
        self.sink = sink
        self.epoch: object = None
        """Repeats of one draw are reported once per epoch (the audit sets its trial here)."""
        self.refresh = refresh
        """Reads the epoch (a child's: the audit's trial is in another process), every
        ``REFRESH_EVERY`` draws."""
        self.own_line = own_line
        """Whether a file is the user's (the script's process): a draw the user's own line
        made is then keyed by that line alone, which keeps a hot loop of draws cheap."""
        self.built: weakref.WeakKeyDictionary[Any, list[Frame]] = weakref.WeakKeyDictionary()
        """Each estimator built here (or unpickled), with the stack it was built from."""
        self.unseeded: dict[str, list[Frame]] = {}
        """Class name -> the first frame of each place one was built without its seed
        argument (distinct places, at most 20 a class): where an estimator that draws in
        another process (which never saw it built) came from."""
        self.limit = limit
        """The most events this process reports (None: no limit; the reader bounds them)."""
        self._own: dict[tuple[Any, ...], object] = {}
        """The user's own drawing lines already reported, with the epoch they were."""
        self._seen: dict[tuple[Any, ...], object] = {}
        self._events = 0
        self._countdown = 0
        self._lock = threading.RLock()
        self._busy = threading.local()
        self._seeds: dict[type, tuple[str, ...]] = {}

    # -- events ----------------------------------------------------------------------------

    def draw(self, what: str, frame: FrameType | None, owner: Any = None) -> None:
        """Something drew from a global stream; ``frame`` called the hooked function. A
        repeat of a draw already reported in this epoch returns at once (a hot loop)."""
        if frame is None or (self.limit is not None and self._events >= self.limit):
            return  # nothing more will be reported: no cost per draw either
        if self.refresh is not None:
            self._countdown -= 1
            if self._countdown <= 0:
                self._countdown = REFRESH_EVERY
                self.epoch = self.refresh()
        key = (what, frame.f_code, frame.f_lineno)
        if self._own.get(key, self) == self.epoch or getattr(self._busy, "on", False):
            return
        self._busy.on = True  # a draw inside our own work (a property) is not an event
        try:
            self._draw(what, frame, owner, key)
        except Exception:  # never break the user's code
            pass
        finally:
            self._busy.on = False

    def _draw(self, what: str, frame: FrameType, owner: Any, own: tuple[Any, ...]) -> None:
        code, epoch = frame.f_code, self.epoch
        fast = self.own_line is not None and self.own_line(code.co_filename)
        key = own if fast else (what, type(owner), *_chain(frame))
        seen = self._own if fast else self._seen
        with self._lock:
            if seen.get(key, self) == epoch:
                return
            if self.limit is not None and self._events >= self.limit:
                return
            if len(seen) < MAX_KEYS or key in seen:
                seen[key] = epoch
        if owner is None and not fast:
            owner = _owner(frame)
        if owner is not None and _ignores_seed(owner):
            return  # sklearn ignores its random_state then: it asked, and draws for nothing
        # the user's own line drew: that line is the whole story (the reader needs no more)
        stack = stack_of(frame)[:1] if fast else stack_of(frame)
        event: dict[str, Any] = {"draw": what, "stack": stack}
        attribute = unseeded_attribute(owner)
        if attribute is not None:
            built = self.built.get(owner) if _weakable(owner) else None
            event["owner"] = {"cls": type(owner).__name__, "param": attribute, "built": built}
        with self._lock:
            self._events += 1
        self.sink(event)

    # -- construction ----------------------------------------------------------------------

    def constructed(
        self, obj: Any, cls: type, frame: FrameType | None, kwargs: dict[str, Any]
    ) -> None:
        """``obj`` was just made by ``cls(...)`` (or unpickled) from ``frame``."""
        if frame is None or not _weakable(obj):
            return
        try:
            original = None
            if frame.f_code.co_name in CLONES:  # sklearn.base.clone's original
                original = frame.f_locals.get("estimator")
            if original is not None and type(original) is cls and _weakable(original):
                inherited = self.built.get(original)
                if inherited is not None:
                    self.built[obj] = inherited
                    return
            stack = stack_of(frame)
            self.built[obj] = stack
            seeds = self._seeds.get(cls)
            if seeds is None:
                seeds = self._seeds[cls] = _seed_params_of(cls)
            if seeds and all(kwargs.get(p) is None for p in seeds):
                places = self.unseeded.setdefault(cls.__name__, [])
                if stack[0][:2] not in [p[:2] for p in places] and len(places) < 20:
                    places.append(stack[0])
        except Exception:
            pass

    # -- installing ------------------------------------------------------------------------

    def install(self) -> None:
        """Hook ``random`` now; sklearn and NumPy as they load (now, if they are loaded)."""
        import random

        for name in RANDOM_DRAWS:
            self._wrap_draw(random, name, f"random.{name}", getattr(random, "_inst", None))
        when_imported("numpy", self._hook_numpy)
        when_imported("sklearn.base", self._hook_base)
        when_imported("sklearn.utils.validation", self._hook_validation)
        when_imported("sklearn.model_selection._split", self._hook_splitters)

    def _wrap_draw(self, owner: Any, name: str, what: str, stream: Any) -> None:
        original = getattr(owner, name, None)
        if original is None or getattr(original, "__self__", None) is not stream:
            return  # not the global stream's (or already wrapped)
        draw = self.draw

        @functools.wraps(original)
        def drawn(*args: Any, **kwargs: Any) -> Any:
            draw(what, sys._getframe(1))
            return original(*args, **kwargs)

        # pickled by reference as the module attribute it replaces (``np.random.normal``
        # sent to a joblib worker): wraps' ``RandomState.normal`` would find another object
        drawn.__module__ = getattr(owner, "__name__", drawn.__module__)
        drawn.__qualname__ = name
        with contextlib.suppress(AttributeError, TypeError):
            setattr(owner, name, drawn)

    def _hook_numpy(self, numpy: ModuleType) -> None:
        module = numpy.random
        stream = getattr(getattr(module, "mtrand", None), "_rand", None)
        for name in NUMPY_DRAWS:
            self._wrap_draw(module, name, f"np.random.{name}", stream)

    def _hook_validation(self, validation: ModuleType) -> None:
        original = getattr(validation, "check_random_state", None)
        if original is None or getattr(original, "_repro_check_rng", False):
            return
        draw = self.draw

        @functools.wraps(original)
        def check_random_state(seed: Any) -> Any:
            if seed is None:
                draw("check_random_state(None)", sys._getframe(1))
            return original(seed)

        check_random_state._repro_check_rng = True  # type: ignore[attr-defined]
        setattr(validation, "check_random_state", check_random_state)  # noqa: B010
        for name, module in list(sys.modules.items()):  # any that bound it already
            if name.startswith("sklearn") and getattr(module, "check_random_state", None) is (
                original
            ):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(module, "check_random_state", check_random_state)  # noqa: B010

    def _hook_base(self, base: ModuleType) -> None:
        self._hook_new(getattr(base, "BaseEstimator", None))

    def _hook_splitters(self, split: ModuleType) -> None:
        """The cross-validation splitters (``KFold(shuffle=True)``, ``ShuffleSplit``) are no
        estimators: their bases get the same ``__new__``, so a splitter's draw is placed
        where the user built it, not at the ``cross_val_score`` line that used it."""
        for name in SPLITTER_BASES:
            self._hook_new(getattr(split, name, None))

    def _hook_new(self, base: Any) -> None:
        """``base`` (and its subclasses) remember the stack each instance was built from."""
        if not isinstance(base, type) or "_repro_check_rng" in base.__dict__:
            return
        hooked: type = base
        constructed = self.constructed

        def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
            nxt = super(hooked, cls).__new__  # type: ignore[arg-type]  # a class, checked above
            obj = nxt(cls) if nxt is object.__new__ else nxt(cls, *args, **kwargs)
            constructed(obj, cls, sys._getframe(1), kwargs)
            return obj

        base.__new__ = staticmethod(__new__)  # type: ignore[assignment]
        base._repro_check_rng = True  # type: ignore[attr-defined]


def _ignores_seed(owner: Any) -> bool:
    """Whether sklearn documents ``owner``'s ``random_state`` as ignored (``IGNORED_UNLESS``)."""
    module = type(owner).__module__
    for prefix, flag in IGNORED_UNLESS.items():
        if module == prefix or module.startswith(prefix + "."):
            value = getattr(owner, flag, None)
            return value is False or (isinstance(value, str) and value in OFF)
    return False


def _weakable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
        hash(obj)
    except TypeError:
        return False
    return True


def _chain(frame: FrameType | None) -> list[tuple[Any, int]]:
    """The (code, line) of each frame out from ``frame``: one draw's identity."""
    found: list[tuple[Any, int]] = []
    while frame is not None and len(found) < MAX_DEPTH:
        found.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    return found


def _owner(frame: FrameType | None) -> Any:
    """The innermost ``self`` out from ``frame`` whose seed attribute is None (the estimator
    or splitter that asked for the global stream)."""
    while frame is not None:
        code = frame.f_code
        method = code.co_argcount and code.co_varnames[0] == "self"
        obj = frame.f_locals.get("self") if method else None
        if obj is not None and unseeded_attribute(obj) is not None:
            return obj
        frame = frame.f_back
    return None


class AfterImport:
    """Runs ``callback(module)`` right after ``name`` is first imported, then removes itself.
    A ``find_spec`` that imports nothing (``importlib.util.find_spec("torch")``, as code checks
    for an optional package before importing it) leaves it armed: only that spec's loader was
    wrapped, and the import that follows gets its own. ``quiet``: an error in ``callback`` is
    swallowed (the audit's hooks never break the user's import). The one such finder of the
    package (``controls.after_import`` uses it): here because this module stays stdlib-only."""

    def __init__(
        self, name: str, callback: Callable[[ModuleType], None], quiet: bool = False
    ) -> None:
        self.name = name
        self.callback = callback
        self.quiet = quiet
        self._finding = False
        self._done = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name or self._finding or self._done:
            return None
        self._finding = True  # the search below asks every finder, this one included
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is None or spec.loader is None:
            return spec
        original = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            if self._done:
                return
            self._done = True
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            if not self.quiet:
                self.callback(module)
                return
            with contextlib.suppress(Exception):
                self.callback(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """``callback(module)`` now if ``name`` is loaded, else right after it loads; an error in
    it is swallowed."""
    if name in sys.modules:
        with contextlib.suppress(Exception):
            callback(sys.modules[name])
        return
    sys.meta_path.insert(0, AfterImport(name, callback, quiet=True))


def child_epoch(path: str) -> Callable[[], object]:
    """A child's epoch: the size of the file the audit grows by a byte at each new trial,
    so that a worker process that outlives a trial reports its draws again in the next."""

    def epoch() -> object:
        try:
            return os.stat(path).st_size
        except OSError:
            return 0

    return epoch


def install_in_child(path: str) -> LibraryHooks:
    """In a Python process the user's code started: each event is a line in ``path``."""
    lock = threading.Lock()
    pid = os.getpid()

    def sink(event: dict[str, Any]) -> None:
        event["pid"] = pid
        line = json.dumps(event, default=str)
        with lock, contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as file:
            file.write(line + "\n")

    hooks = LibraryHooks(sink, limit=MAX_EVENTS, refresh=child_epoch(path + ".epoch"))
    hooks.install()
    return hooks
