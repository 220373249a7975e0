"""Script mode's Optuna hooks: the choke points every study the script makes passes through.

``Study.__init__`` (every ``create_study``/``load_study``, in creation order, and Optuna's
default sampler), ``Study.__setstate__`` (a study the script deep-copies or loads with
``pickle``/``joblib``: no ``__init__`` builds it), the samplers' ``__init__`` (the arguments the
script gave, where it built them, a seed added under ``--controls``), ``Study.optimize``
(n_trials/timeout/n_jobs asked, ``--trials`` caps, each trial's error kept) and ``Study.ask``
(every trial, ask/tell loops too: the per-trial reseed and the cap; a study none of the others
saw is recorded there, and a study asked for trials in another process makes the run a crash).
What they see goes to the ``StudyRegistry``; the hooks keep only the run's own state (the
``optimize`` calls running, a ``SystemExit`` inside one, the line trace of an ask/tell loop).
"""

from __future__ import annotations

import functools
import inspect
import operator
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from repro_check.execution.sampler_owner import library_owner
from repro_check.execution.script_registry import StudyRegistry
from repro_check.execution.script_studies import CapReached, StudyEntry
from repro_check.execution.target import one_line
from repro_check.execution.userframes import is_user_file, user_location
from repro_check.results.records import SamplerInfo
from repro_check.results.script_notes import SEEDABLE


class OptunaHooks:
    """The patches on Optuna's classes, installed once the script imports Optuna."""

    def __init__(
        self,
        registry: StudyRegistry,
        notes: list[str],
        trial_seed: Callable[[int], None] | None,
    ) -> None:
        self.registry = registry
        self.notes = notes
        """The capture's run notes (a study optimized from several threads at once)."""
        self.trial_seed = trial_seed
        """Reseeds the global generators for a trial number (``--controls trial_reseed``)."""
        self.optimizing = 0
        """``optimize`` calls running now (a SystemExit inside one is a crash)."""
        self.exit_in_optimize = False
        self.exit_code: Any = None
        """The code of the first SystemExit raised inside ``optimize``."""
        self.on_swallowed: Callable[[CapReached], None] | None = None
        """Ends the run as if the script had stopped at the cap (it does not return): called
        when the script asks again after swallowing ``CapReached`` (a bare ``except:``)."""
        self.audit: Any = None
        """The entropy audit (``diagnose`` only): told which trial each ask starts."""
        self.tracer: Any = None
        """The line tracer (``diagnose``'s line-trace probe only): traces the objective's call
        for trial ``trace_at[1]`` of study ``trace_at[0]`` (in creation order)."""
        self.trace_at: tuple[int, int] | None = None
        self.traced: Callable[..., Any] | None = None
        """The worker's ``traced``: wraps an objective so that its first call is traced."""
        self._tracing_ask = False
        """The tracer runs between an ``ask`` and its ``tell`` (an ask/tell loop)."""

    def install(self, optuna: Any) -> None:
        """Hook the samplers, then ``Study``."""
        self.registry.get_trials = optuna.study.Study.get_trials
        self._hook_samplers(optuna)
        self._hook_study(optuna)

    def _hook_samplers(self, optuna: Any) -> None:
        """Every sampler class with an ``__init__`` of its own: Optuna's, those already
        defined (an integration's), and, through ``BaseSampler.__init_subclass__``, those
        defined from now on (the script's own sampler classes)."""
        base = optuna.samplers.BaseSampler
        seen: set[type] = set()
        stack = list(base.__subclasses__())
        while stack:
            cls = stack.pop()
            if cls in seen:
                continue
            seen.add(cls)
            stack.extend(cls.__subclasses__())
            if "__init__" in cls.__dict__:
                self._wrap_sampler(cls, _is_optunas(cls))
        hooks = self
        own = base.__dict__.get("__init_subclass__")

        def init_subclass(cls: Any, /, **kwargs: Any) -> None:
            if own is not None:
                own.__func__(cls, **kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)
            if "__init__" in cls.__dict__:
                hooks._wrap_sampler(cls, _is_optunas(cls))

        base.__init_subclass__ = classmethod(init_subclass)
        own_new = base.__dict__.get("__new__")

        def new(cls: Any, /, *args: Any, **kwargs: Any) -> Any:
            # a class whose __init__ came after __init_subclass__ (``@dataclass`` adds it
            # then) is wrapped when first built: type() calls __init__ after __new__
            init = cls.__dict__.get("__init__")
            if init is not None and not getattr(init, "_repro_check_sampler", False):
                hooks._wrap_sampler(cls, _is_optunas(cls))
            if own_new is not None:
                return own_new(cls, *args, **kwargs)
            return object.__new__(cls)

        base.__new__ = staticmethod(new)

    def _wrap_sampler(self, cls: type, optunas: bool) -> None:
        """Record how the script builds ``cls`` (and seed it under ``sampler_seed``, when its
        ``__init__`` takes a ``seed`` left None). ``optunas``: one of Optuna's own classes,
        whose seeding rule the parent knows by name (``script_notes.SEEDABLE``)."""
        original: Any = cls.__dict__["__init__"]
        try:
            signature = inspect.signature(original)
        except (TypeError, ValueError):
            return  # not a Python function: nothing to bind a seed to
        takes_seed = "seed" in signature.parameters
        registry = self.registry
        local = registry.local
        hooks = self

        def init(sampler: Any, *args: Any, **kwargs: Any) -> None:
            if getattr(local, "depth", 0) or getattr(local, "internal", False):
                original(sampler, *args, **kwargs)  # built by Optuna or by the check itself
                return
            if not takes_seed:
                hooks._unseedable(original, sampler, optunas, args, kwargs)
                return
            try:
                bound = signature.bind(sampler, *args, **kwargs)
            except TypeError:
                original(sampler, *args, **kwargs)  # the script's own mistake: Optuna says so
                return
            given = bound.arguments.get("seed")
            seeded = False
            if given is None and registry.seed_samplers:
                bound.arguments["seed"] = registry.seed
                seeded = True
            # inside one of Optuna's samplers, the samplers it builds are its own business
            # (NSGA-II seeds its children from its seed); inside the script's own class,
            # a sampler it builds is the script's, seeded and recorded as any other
            local.depth = 1 if optunas else 0
            try:
                original(*bound.args, **bound.kwargs)
            finally:
                local.depth = 0
            seed = given if isinstance(given, int) and not isinstance(given, bool) else None
            owner = library_owner(sys._getframe(1))
            if owner is None and optunas:  # Optuna's rule, by class name, unless a subclass
                inherits = type(sampler) is not cls and cls.__name__ in SEEDABLE
                param = "seed" if inherits else None
            else:
                param = "seed"
            if owner is not None:
                info = SamplerInfo(
                    type(sampler).__name__, seed, owner.at, seeded, owner.param, owner.via
                )
            else:
                info = SamplerInfo(type(sampler).__name__, seed, user_location(), seeded, param)
            registry.samplers[id(sampler)] = (sampler, info)

        # wrapped: inspect.signature(cls) reads the class's own parameters, as without the check
        wrapped: Any = functools.wraps(original)(init)
        wrapped._repro_check_sampler = True  # once: BaseSampler.__new__ checks it
        cls.__init__ = wrapped  # type: ignore[misc]

    def _unseedable(
        self, original: Any, sampler: Any, optunas: bool, args: Any, kwargs: Any
    ) -> None:
        """A sampler class whose ``__init__`` takes no ``seed``: built as written. A sampler
        class of its own that it builds (or its Optuna base, through ``super().__init__``)
        is seeded and recorded by its own hook; if nothing recorded this one, it is recorded
        as built, and under ``sampler_seed`` a note says the check could not seed it."""
        at = user_location(3)
        original(sampler, *args, **kwargs)
        registry = self.registry
        if registry.known_sampler(sampler) is not None:
            return  # its Optuna base class took the seed
        owner = library_owner(sys._getframe(2))
        info = SamplerInfo(
            type(sampler).__name__,
            None,
            owner.at if owner is not None else at,
            False,
            owner.param if owner is not None else None,
            owner.via if owner is not None else None,
        )
        registry.samplers[id(sampler)] = (sampler, info)
        if registry.seed_samplers and not optunas and owner is None:
            note = (
                f"{_where(at)}{info.cls}() takes no seed parameter: --controls sampler_seed "
                "cannot seed it (if it draws random numbers, give it a seed of its own)"
            )
            if note not in self.notes:
                self.notes.append(note)

    def _hook_study(self, optuna: Any) -> None:
        study_class = optuna.study.Study
        registry = self.registry
        registry.study_class = study_class
        original_init = study_class.__init__

        def init(
            study: Any, study_name: str, storage: Any, sampler: Any = None, pruner: Any = None
        ) -> None:
            default = sampler is None and isinstance(study, study_class)
            owner = library_owner(sys._getframe(1)) if default else None
            registry.local.internal = default  # Optuna's default sampler is not the script's
            try:
                if default and registry.seed_samplers:
                    sampler = optuna.samplers.TPESampler(seed=registry.seed)
                original_init(study, study_name, storage, sampler, pruner)
            finally:
                registry.local.internal = False
            if isinstance(study, study_class):  # a subclass the script defined, too
                registry.register(study, default, owner)

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
        registry = self.registry
        getstate = getattr(study_class, "__getstate__", None)
        setstate = getattr(study_class, "__setstate__", None)

        def get(study: Any) -> Any:
            state = getstate(study) if getstate is not None else study.__dict__.copy()
            registry.remember_sampler(study)
            return state

        def set_(study: Any, state: Any) -> None:
            if setstate is not None:
                setstate(study, state)
            else:
                study.__dict__.update(state)
            registry.adopt(study, "unpickled")

        study_class.__getstate__ = get
        study_class.__setstate__ = set_

    def _hook_optimize(self, study_class: Any) -> None:
        original = study_class.optimize
        signature = inspect.signature(original)
        hooks, registry = self, self.registry

        def optimize(study: Any, *args: Any, **kwargs: Any) -> Any:
            entry = registry.entry(study)
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
            given["func"] = hooks._objective(entry, given["func"])
            given["callbacks"] = [_live(registry, entry), *(given.get("callbacks") or [])]
            registry.announce(entry)  # what it plans to run now: progress counts toward it
            with registry.lock:
                hooks.optimizing += 1
                entry.active += 1
                hooks._concurrent(entry)
            try:
                return original(*bound.args, **bound.kwargs)
            except SystemExit as exc:
                if not hooks.exit_in_optimize:
                    hooks.exit_in_optimize, hooks.exit_code = True, exc.code
                raise
            finally:
                with registry.lock:
                    hooks.optimizing -= 1
                    entry.active -= 1
                registry.told_all(entry)  # a trial that failed past the callbacks

        study_class.optimize = optimize

    def _concurrent(self, entry: StudyEntry) -> None:
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

    def _objective(self, entry: StudyEntry, func: Callable[[Any], Any]) -> Callable[[Any], Any]:
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

    def _traced_call(self, entry: StudyEntry, func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``func``, traced line by line at the one trial ``trace_at`` names (else as is)."""
        if self.tracer is None or self.trace_at is None or self.traced is None:
            return func
        if self.tracer.started:  # traced already (in an earlier optimize call)
            return func
        study_at, trial_at = self.trace_at
        if self.registry.entries.index(entry) != study_at:
            return func
        traced = self.traced(func, self.tracer)

        def call(trial: Any) -> Any:
            if trial.number == trial_at:
                return traced(trial)
            return func(trial)

        return call

    def _hook_ask(self, study_class: Any) -> None:
        original = study_class.ask
        hooks, registry = self, self.registry

        def ask(study: Any, *args: Any, **kwargs: Any) -> Any:
            if os.getpid() != registry.pid:  # the script's study, or one the child unpickled
                registry.children.note(study, user_location(), "asked for trials of")
            entry = registry.entry(study) or registry.adopt(study, "copied")
            if entry is not None:
                with registry.lock:
                    refused = entry.limit is not None and entry.asked >= entry.limit
                    if refused:
                        entry.capped = True
                        entry.refused += 1
                    else:
                        entry.asked += 1
                if refused:
                    reached = CapReached(str(study.study_name))
                    if entry.refused > 1 and hooks.on_swallowed is not None:
                        hooks.on_swallowed(reached)  # a loop that swallows it would not end
                    raise reached
            trial = original(study, *args, **kwargs)
            if entry is not None and hooks.trial_seed is not None:
                hooks.trial_seed(trial.number)
            if hooks.audit is not None:
                hooks.audit.trial = trial.number
            if entry is not None and hooks.tracer is not None:
                hooks._trace_ask(entry, trial, sys._getframe(1))
            return trial

        study_class.ask = ask
        self._hook_add_trial(study_class)
        original_tell = study_class.tell

        def tell(study: Any, *args: Any, **kwargs: Any) -> Any:
            """An ask/tell loop's trial ends here: the trace stops, the trial streams."""
            if hooks._tracing_ask:
                hooks.stop_trace()
            frozen = original_tell(study, *args, **kwargs)
            entry = registry.entry(study)
            if entry is not None and hasattr(frozen, "state"):
                registry.told(entry, frozen)
            return frozen

        study_class.tell = tell

    def _hook_add_trial(self, study_class: Any) -> None:
        """``add_trial`` (``enqueue_trial`` too) puts trials in a study without ``ask``: a
        study none of the other hooks saw is recorded there, a child's makes the run a crash."""
        original = study_class.add_trial
        registry = self.registry

        def add_trial(study: Any, *args: Any, **kwargs: Any) -> Any:
            if os.getpid() != registry.pid:
                registry.children.note(study, user_location(), "added trials to")
            elif registry.entry(study) is None:
                registry.adopt(study, "copied")
            return original(study, *args, **kwargs)

        study_class.add_trial = add_trial

    def _trace_ask(self, entry: StudyEntry, trial: Any, caller: FrameType) -> None:
        """An ask/tell loop in the script's own code: trace its lines for the trial
        ``trace_at`` names, from ``ask`` to ``tell`` (or the next ``ask``, or the end).
        ``optimize``'s own asks (Optuna's frame) are traced through the objective instead."""
        if self._tracing_ask:
            self.stop_trace()
        at = self.trace_at
        if self.tracer.started or at is None or self.registry.entries.index(entry) != at[0]:
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


def _live(registry: StudyRegistry, entry: StudyEntry) -> Callable[[Any, Any], None]:
    """The ``optimize`` callback that streams each trial once Optuna has told it (first in the
    list, so a callback of the script's that raises cannot hold it back)."""

    def streamed(_study: Any, frozen: Any) -> None:
        registry.told(entry, frozen)

    return streamed


def _is_optunas(cls: type) -> bool:
    """One of Optuna's own classes (not an integration's or the script's)."""
    return cls.__module__ == "optuna" or cls.__module__.startswith("optuna.")


def _where(at: str | None) -> str:
    return f"{at}: " if at else ""


def _as_int(value: Any) -> int | None:
    """``value`` as an int where Python would take it as one (numpy's integers too), else
    None (bools are not counts)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None
