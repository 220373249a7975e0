"""The frozen value objects that describe a check: what study to run, how, and how to compare.

They are plain data (no optuna, no torch) so the CLI can build and validate them instantly and a
worker process can receive them as JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from repro_check.json_values import to_json_safe
from repro_check.plan.liveness import DEFAULT_STALE_AFTER
from repro_check.plan.targets import is_script
from repro_check.redact import redact
from repro_check.vocab import Pruner, Sampler

DEFAULT_TRIALS = 20
DEFAULT_RUNS = 3
DEFAULT_SEED = 0
DEFAULT_THREADS = 1
"""The thread count the ``threads`` control pins (torch and OpenMP/MKL/OpenBLAS) when it is on.
One thread makes float reductions independent of the core count and keeps concurrent workers
from fighting over cores; ``--threads`` changes it. With the control off a worker keeps the
thread counts ``python train.py`` would get."""

SAMPLERS: tuple[str, ...] = tuple(Sampler)
"""The built-in sampler names (``repro_check.vocab.SAMPLERS`` holds what each needs)."""
PRUNERS: tuple[str, ...] = tuple(Pruner)
DIRECTIONS = ("minimize", "maximize")
DEVICES = ("auto", "cpu", "cuda")

STUDY_NAME = "repro-check"
"""Every replicate study gets this fixed name: Hyperband assigns brackets from the study name."""


@dataclass(frozen=True)
class StudySettings:
    """How each replicate's Optuna study is built and run."""

    trials: int = DEFAULT_TRIALS
    """Number of trials per study."""
    directions: tuple[str, ...] = ("minimize",)
    """One direction per objective value; several make a multi-objective study."""
    sampler: str = Sampler.TPE
    """A name from ``SAMPLERS`` or ``"pkg.mod:factory"`` called with ``seed=``."""
    sampler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the sampler (from the config file)."""
    pruner: str = Pruner.NONE
    """A name from ``PRUNERS``."""
    pruner_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the pruner (from the config file)."""
    n_jobs: int = 1
    """Optuna's ``n_jobs``: above 1, trials run in threads and cannot be reproducible."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["directions"] = list(self.directions)
        data["sampler_kwargs"] = dict(self.sampler_kwargs)
        data["pruner_kwargs"] = dict(self.pruner_kwargs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudySettings:
        return cls(
            trials=int(data["trials"]),
            directions=tuple(data["directions"]),
            sampler=str(data["sampler"]),
            sampler_kwargs=dict(data.get("sampler_kwargs", {})),
            pruner=str(data["pruner"]),
            pruner_kwargs=dict(data.get("pruner_kwargs", {})),
            n_jobs=int(data["n_jobs"]),
        )


SEEDED_CONTROLS = ("sampler_seed", "global_rng", "trial_reseed", "hash_seed")
"""The controls that read the check's seed (``hash_seed`` sets ``PYTHONHASHSEED`` to it): with
every one of them off, a seed changes nothing."""


@dataclass(frozen=True)
class Controls:
    """Which seed and determinism controls a worker applies. All on is what ``run`` does."""

    sampler_seed: bool = True
    """Pass the seed to the sampler."""
    global_rng: bool = True
    """Seed ``random``, NumPy's global RNG and torch (CPU and all CUDA devices) at start."""
    trial_reseed: bool = True
    """Reseed those global RNGs before each trial from (seed, trial number)."""
    hash_seed: bool = True
    """Fix ``PYTHONHASHSEED``; off leaves it as the user's shell has it (unset: a fresh random
    one per process)."""
    threads: bool = True
    """Pin torch's and OpenMP/MKL/OpenBLAS's thread counts to ``CheckPlan.threads``; off
    leaves them as the user's shell has them (the libraries' defaults: one per core)."""
    torch_determinism: bool = True
    """``torch.use_deterministic_algorithms(True)`` and ``CUBLAS_WORKSPACE_CONFIG``."""
    cudnn: bool = True
    """cuDNN benchmark off, deterministic on."""

    def to_dict(self) -> dict[str, bool]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Controls:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: bool(v) for k, v in data.items() if k in names})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def only(cls, names: Sequence[str]) -> Controls:
        """Exactly the named controls on, the rest off."""
        return cls(**{name: name in names for name in cls.names()})

    def enabled(self) -> list[str]:
        return [name for name in self.names() if getattr(self, name)]

    @property
    def take_seed(self) -> bool:
        """Some control hands the check's seed to the code (the sampler's, the global RNGs',
        ``PYTHONHASHSEED``); with none on, ``CheckPlan.seed`` reaches nothing a run does."""
        return any(getattr(self, name) for name in SEEDED_CONTROLS)

    @classmethod
    def none(cls) -> Controls:
        """Every control off: what a user gets with no help."""
        return cls(**{f.name: False for f in dataclasses.fields(cls)})

    def without(self, name: str) -> Controls:
        return dataclasses.replace(self, **{name: False})


@dataclass(frozen=True)
class Tolerance:
    """How close two floats must be to count as equal. Both zero means bit-for-bit."""

    atol: float = 0.0
    rtol: float = 0.0

    @property
    def exact(self) -> bool:
        return self.atol == 0.0 and self.rtol == 0.0


@dataclass(frozen=True)
class CheckPlan:
    """Everything a check needs, merged from defaults, pyproject, ``--config`` and flags."""

    target: str
    """``pkg.module:attr`` or ``path/to/file.py:attr``."""
    study: StudySettings = field(default_factory=StudySettings)
    runs: int = DEFAULT_RUNS
    """Replicates per check (at least 2)."""
    seed: int = DEFAULT_SEED
    """The seed every replicate gets."""
    workers: int | None = None
    """Concurrent replicates; None means one per core, capped at ``runs`` (on CUDA one per
    placed GPU, and never more than the GPUs)."""
    timeout: float | None = None
    """Seconds per replicate before it is killed."""
    threads: int = DEFAULT_THREADS
    """torch intra-op and OMP/MKL/OpenBLAS threads per worker when the ``threads`` control is
    on (``--threads``); independent of ``workers``."""
    device: str = "auto"
    """"auto", "cpu" or "cuda" as asked; the runner resolves "auto"."""
    gpus: str | None = None
    """GPUs to place replicates on, one at a time each: "all" or indices/UUIDs ("0,1,3");
    None means every visible GPU on CUDA (and nothing asked off CUDA)."""
    tolerance: Tolerance = field(default_factory=Tolerance)
    controls: Controls = field(default_factory=Controls)
    fail_fast: bool = False
    """Stop every replicate at the first certain divergence (the verdict is then known)."""
    storage: str | None = None
    """Optuna storage URL for the replicate studies (``--storage``); None keeps them in memory."""
    name: str | None = None
    """The check's name in the storage: studies are ``<name>/run-<k>``."""
    resume: bool = False
    """Retake replicates whose process died (claimed, unfinished, no heartbeat)."""
    stale_after: float = DEFAULT_STALE_AFTER
    """Seconds without a heartbeat after which a claimed replicate counts as dead."""
    args: tuple[str, ...] = ()
    """Script mode: the script's command-line arguments (after ``--``)."""
    cap: int | None = None
    """Script mode: ``--trials`` caps every study of the script at this many trials (None:
    the script's own n_trials/timeout stand)."""
    resume_at: int | None = None
    """``--resume-at K``: each replicate also runs K trials in a storage, its process exits,
    and a fresh process resumes the study (``load_study``) for the rest; the resumed
    replicates are compared with each other and with straight-through ones."""
    parameters: tuple[tuple[str, str], ...] = ()
    """Notebook mode: ``-p NAME VALUE``, as (name, the Python source assigned) pairs, set after
    the notebook's ``parameters`` cell (command-line only: not a config key)."""

    @property
    def script(self) -> bool:
        """The target is a script run whole (its own studies, samplers and trial counts)."""
        return is_script(self.target)

    def to_dict(self, device: str) -> dict[str, Any]:
        """The report's ``settings``: this plan as run on ``device`` (the resolved one), its
        storage URL's secrets masked. Only what is true of the run: for a script the study
        settings (trials, directions, sampler, pruner, n_jobs) are the script's own, recorded
        per study in each run, so they are null here; and ``seed`` is null when no control
        hands it to the code (a script as written)."""
        data: dict[str, Any] = {
            "runs": self.runs,
            "seed": self.seed if not self.script or self.controls.take_seed else None,
            "trials": self.study.trials,
            "device": device,
            "gpus": self.gpus,
            "tolerance": {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol},
            "controls": self.controls.to_dict(),
            "directions": list(self.study.directions),
            "sampler": self.study.sampler,
            "sampler_kwargs": to_json_safe(dict(self.study.sampler_kwargs)),
            "pruner": self.study.pruner,
            "pruner_kwargs": to_json_safe(dict(self.study.pruner_kwargs)),
            "n_jobs": self.study.n_jobs,
            "fail_fast": self.fail_fast,
            "threads": self.threads,
            "workers": self.workers,
            "timeout": self.timeout,
            "storage": redact(self.storage) if self.storage else None,
            "name": self.name,
            "stale_after": self.stale_after,
            "args": list(self.args),
            "cap": self.cap,
            "resume_at": self.resume_at,
        }
        if self.script:
            data.update(dict.fromkeys(SCRIPT_OWN_SETTINGS))
        if self.parameters:  # only a notebook's: other reports keep their shape
            data["parameters"] = dict(self.parameters)
        return data

    @classmethod
    def from_dict(cls, target: str, settings: Mapping[str, Any]) -> CheckPlan:
        """The plan a saved report's (or a shared check's) ``settings`` describe."""
        study = (
            StudySettings()
            if settings.get("trials") is None  # a script's: its studies carry their own
            else StudySettings.from_dict(settings)
        )
        seed = settings.get("seed")
        tolerance = settings.get("tolerance") or {}
        return cls(
            target=target,
            study=study,
            runs=int(settings["runs"]),
            seed=DEFAULT_SEED if seed is None else int(seed),
            workers=settings.get("workers"),
            timeout=settings.get("timeout"),
            threads=int(settings.get("threads", 1)),
            device=str(settings["device"]),
            gpus=settings.get("gpus"),
            tolerance=Tolerance(
                float(tolerance.get("atol", 0.0)), float(tolerance.get("rtol", 0.0))
            ),
            controls=Controls.from_dict(settings.get("controls") or {}),
            fail_fast=bool(settings.get("fail_fast", False)),
            name=settings.get("name"),
            stale_after=float(settings.get("stale_after") or DEFAULT_STALE_AFTER),
            args=tuple(str(a) for a in settings.get("args") or ()),
            cap=settings.get("cap"),
            resume_at=_optional_int(settings.get("resume_at")),
            parameters=tuple(
                (str(k), str(v)) for k, v in (settings.get("parameters") or {}).items()
            ),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


STUDY_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(StudySettings))
"""The plan keys that build a ``StudySettings`` (its fields)."""
SCRIPT_OWN_SETTINGS: tuple[str, ...] = STUDY_KEYS
"""The settings a script decides itself (its studies record them): null in its report."""
TOLERANCE_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Tolerance))
"""The plan keys that build a ``Tolerance`` (``atol``, ``rtol``)."""
CHECK_KEYS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(CheckPlan)
    if f.name not in ("target", "study", "tolerance", "cap", "parameters")
)
"""The plan keys that are ``CheckPlan``'s own fields (``target`` is given apart; ``cap`` is
``trials`` for a script; a notebook's ``parameters`` come from ``-p`` alone)."""
PLAN_KEYS: tuple[str, ...] = STUDY_KEYS + CHECK_KEYS + TOLERANCE_KEYS
"""Every key a plan is built from, the one list flags, config files and the API share (a
config/flag ``direction`` is an alias of ``directions``)."""


COMPARED_SETTINGS = (
    "trials",
    "directions",
    "sampler",
    "sampler_kwargs",
    "pruner",
    "pruner_kwargs",
    "seed",
    "n_jobs",
    "args",
    "cap",
    "parameters",
)
"""Settings that change the result by design: a baseline made with others is refused."""


def _setting(plan: CheckPlan, name: str) -> Any:
    if name == "seed":
        return plan.seed
    if name == "args":
        return list(plan.args)
    if name == "cap":
        return plan.cap
    if name == "parameters":
        return dict(plan.parameters)
    value = getattr(plan.study, name)
    return (
        list(value)
        if isinstance(value, tuple)
        else dict(value)
        if isinstance(value, Mapping)
        else value
    )


def _has_effect(plan: CheckPlan, name: str) -> bool:
    """Whether setting ``name`` changes what ``plan``'s runs do: a script's study settings are
    its own, and the seed reaches nothing without a control that takes it."""
    if name == "seed":
        return not plan.script or plan.controls.take_seed
    return not (plan.script and name in SCRIPT_OWN_SETTINGS)


def settings_mismatches(
    baseline: CheckPlan, now: CheckPlan, before: str = "in the baseline", after: str = "now"
) -> list[str]:
    """Human lines naming each setting that differs, e.g. "trials: 20 in the baseline, 30 now"
    (a setting that has no effect on either side, such as a script's sampler, never does)."""
    return [
        f"{name}: {_setting(baseline, name)!r} {before}, {_setting(now, name)!r} {after}"
        for name in COMPARED_SETTINGS
        if (_has_effect(baseline, name) or _has_effect(now, name))
        and _setting(baseline, name) != _setting(now, name)
    ]
