"""The project's vocabularies, each listed once: run statuses, verdicts, ``compare``'s
conditions and its gate, cause ids, and the sampler and pruner registries.

Every member is a ``StrEnum``: it *is* its string (``RunStatus.OK == "ok"``), so JSON, saved
reports and comparisons with strings read back stay exactly as they were. This module imports
nothing from the package, so every layer can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class RunStatus(StrEnum):
    """How one replicate ended (``RunRecord.status``)."""

    OK = "ok"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    ERROR = "error"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    """A report's verdict (``RunReport.verdict``)."""

    REPRODUCIBLE = "reproducible"
    NOT_REPRODUCIBLE = "not reproducible"
    INCOMPLETE = "incomplete"
    DIFFERS_FROM_BASELINE = "differs from baseline"
    AWAITING = "awaiting replicates"
    INTERRUPTED = "interrupted"


class Condition(StrEnum):
    """``compare``'s conditions, in the order they run and are shown."""

    FIXED_SEED = "fixed_seed"
    SEED_SWEEP = "seed_sweep"
    UNCONTROLLED = "uncontrolled"


GATE = Condition.FIXED_SEED
"""The one condition that decides ``compare``'s verdict and exit code; the others inform."""


class CauseId(StrEnum):
    """The causes ``diagnose`` can name; the order is also the tie-break order when two causes
    part the runs at the same trial. Each has exactly one entry in ``checks.causes``' registry
    (how it is found, worded, fixed and located; ``tests/test_causes_registry.py`` pins it)."""

    PARALLEL_TRIALS = "parallel_trials"
    OBJECTIVE_NOISE = "objective_noise"
    TORCH_DETERMINISM = "torch_determinism"
    SAMPLER_SEED = "sampler_seed"
    GLOBAL_RNG = "global_rng"
    TRIAL_RESEED = "trial_reseed"
    HASH_SEED = "hash_seed"
    THREADS = "threads"
    """Results change with the thread count (float sums in thread order, racy updates)."""
    PROCESS_STATE = "process_state"
    RESUME_SAMPLER_STATE = "resume_sampler_state"
    """Resumed from a storage, the sampler suggests other params: its random state was lost."""
    RESUME_STATE = "resume_state"
    """Resumed from a storage, the study changes otherwise (the objective's own state...)."""


class Sampler(StrEnum):
    """The built-in sampler names (``--sampler``); anything else must be ``pkg.mod:factory``."""

    TPE = "tpe"
    RANDOM = "random"
    CMAES = "cmaes"
    GP = "gp"
    QMC = "qmc"
    NSGA2 = "nsga2"
    NSGA3 = "nsga3"
    GRID = "grid"
    BRUTEFORCE = "bruteforce"


class Pruner(StrEnum):
    """The built-in pruner names (``--pruner``)."""

    NONE = "none"
    MEDIAN = "median"
    PERCENTILE = "percentile"
    HYPERBAND = "hyperband"
    SUCCESSIVE_HALVING = "successive-halving"
    THRESHOLD = "threshold"


@dataclass(frozen=True)
class SamplerSpec:
    """What the package knows about one built-in sampler."""

    optuna_class: str
    """Its class in ``optuna.samplers``: the worker builds it, plan validation checks its keyword
    arguments against it, and ``diagnose``'s fix names it."""
    value_free: bool = False
    """Its suggestions never depend on the trial values (noise cannot steer it)."""
    startup_trials: int | None = None
    """Optuna's default ``n_startup_trials`` (suggested at random, whatever the values)."""


SAMPLERS: MappingProxyType[Sampler, SamplerSpec] = MappingProxyType(
    {
        Sampler.TPE: SamplerSpec("TPESampler", startup_trials=10),
        Sampler.RANDOM: SamplerSpec("RandomSampler", value_free=True),
        Sampler.CMAES: SamplerSpec("CmaEsSampler", startup_trials=1),
        Sampler.GP: SamplerSpec("GPSampler", startup_trials=10),
        Sampler.QMC: SamplerSpec("QMCSampler", value_free=True),
        Sampler.NSGA2: SamplerSpec("NSGAIISampler"),
        Sampler.NSGA3: SamplerSpec("NSGAIIISampler"),
        Sampler.GRID: SamplerSpec("GridSampler", value_free=True),
        Sampler.BRUTEFORCE: SamplerSpec("BruteForceSampler", value_free=True),
    }
)
"""One entry per ``Sampler`` member (a test pins that)."""

PRUNERS: MappingProxyType[Pruner, str] = MappingProxyType(
    {
        Pruner.NONE: "NopPruner",
        Pruner.MEDIAN: "MedianPruner",
        Pruner.PERCENTILE: "PercentilePruner",
        Pruner.HYPERBAND: "HyperbandPruner",
        Pruner.SUCCESSIVE_HALVING: "SuccessiveHalvingPruner",
        Pruner.THRESHOLD: "ThresholdPruner",
    }
)
"""Each built-in pruner's class in ``optuna.pruners``."""


def sampler_spec(name: str) -> SamplerSpec | None:
    """The registry entry for a sampler name, None for a ``pkg.mod:factory`` (or unknown) one."""
    return _SAMPLERS_BY_NAME.get(name)


_SAMPLERS_BY_NAME = {str(name): spec for name, spec in SAMPLERS.items()}
