"""The frozen value objects that describe a check: what study to run, how, and how to compare.

They are plain data (no optuna, no torch) so the CLI can build and validate them instantly and a
worker process can receive them as JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TRIALS = 20
DEFAULT_RUNS = 3
DEFAULT_SEED = 0
DEFAULT_THREADS = 1
"""Default torch/BLAS thread count per worker. One thread makes float reductions independent of
the core count and keeps concurrent workers from fighting over cores; ``--threads`` changes it."""

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "nsga2", "nsga3", "grid", "bruteforce")
PRUNERS = ("none", "median", "percentile", "hyperband", "successive-halving", "threshold")
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
    sampler: str = "tpe"
    """A name from ``SAMPLERS`` or ``"pkg.mod:factory"`` called with ``seed=``."""
    sampler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the sampler (from the config file)."""
    pruner: str = "none"
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
    """Fix ``PYTHONHASHSEED``; off means a fresh random one per process."""
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
    """Concurrent replicates; None means one per core, capped at ``runs`` (1 on CUDA)."""
    timeout: float | None = None
    """Seconds per replicate before it is killed."""
    threads: int = DEFAULT_THREADS
    """torch intra-op and OMP/MKL/OpenBLAS threads per worker; independent of ``workers``."""
    device: str = "auto"
    """"auto", "cpu" or "cuda" as asked; the runner resolves "auto"."""
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
    stale_after: float = 120.0
    """Seconds without a heartbeat after which a claimed replicate counts as dead."""
