"""The causes ``diagnose`` can name, and the fix for each, as code the user can paste."""

from __future__ import annotations

from dataclasses import dataclass

from repro_check.plan.settings import StudySettings
from repro_check.results.comparison import Divergence
from repro_check.vocab import CauseId, sampler_spec

CAUSE_IDS = tuple(CauseId)
"""Also the tie-break order when two causes part the runs at the same trial (``CauseId``'s)."""


@dataclass(frozen=True)
class Location:
    """The line of the user's code a cause enters at."""

    file: str
    line: int
    source: str
    """The line's text."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "source": self.source}


@dataclass(frozen=True)
class Cause:
    """One reason the study is not reproducible, with what shows it and what fixes it."""

    id: str
    evidence: str
    fix: str
    trial: int | None = None
    """Where it parts the runs (earlier ranks higher); None when not trial-specific."""
    blocking: bool = False
    """Found with every control on: no control can make up for it, so it ranks first."""
    location: Location | None = None
    """Where it enters the user's code, when the audit saw it (None: not found)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "evidence": self.evidence,
            "fix": self.fix,
            "trial": self.trial,
            "location": self.location.to_dict() if self.location is not None else None,
        }


@dataclass(frozen=True)
class ToleranceCheck:
    """A candidate ``--atol`` tried on the study, so that advice never names a tolerance that
    would not make the check pass."""

    atol: float
    runs: int
    """How many fully controlled runs were compared under it."""
    trials: int
    """How many trials each run had (the study's length when the check passed)."""
    divergence: Divergence | None
    """Where the runs still part under ``atol``; None: they agreed on every trial."""
    steered_at: int | None = None
    """The first trial at which the runs got different params (bit for bit): from there the
    noise steers the sampler, and agreeing within ``atol`` is luck that more runs or trials
    would not repeat. None: the same params in every run."""

    reorder: tuple[float, float] | None = None
    """(noise, smallest gap between two trials' values) when the noise is at least as large
    as that gap and the sampler uses the values: it can reorder the trials, which steers the
    sampler, even if these runs happened to keep the same order."""
    startup: int | None = None
    """The sampler's start-up trials (suggested without looking at values), when known."""

    @property
    def passed(self) -> bool:
        return self.divergence is None and self.steered_at is None and self.reorder is None

    @property
    def agree_until(self) -> int:
        """How many first trials agree within the tolerance with the same params."""
        parted = self.divergence.trial if self.divergence is not None else None
        return min((t for t in (self.steered_at, parted) if t is not None), default=0)

    @property
    def atol_text(self) -> str:
        return f"{self.atol:g}"


@dataclass(frozen=True)
class FixContext:
    """What a fix can be tailored to: the user's sampler, seed, script and libraries."""

    study: StudySettings
    seed: int
    target: str
    torch_used: bool = False
    noise: float | None = None
    """The spread the objective showed at fixed params, for a tolerance that would absorb it."""
    tolerance: ToleranceCheck | None = None
    """That tolerance, tried: a fix suggests ``--atol`` only when the check passed with it."""


def _script(target: str) -> str:
    location = target.rpartition(":")[0] if ":" in target else target
    return location if location.endswith(".py") else "your_script.py"


def fix_for(cause_id: str, ctx: FixContext) -> str:
    """The paste-able fix for a cause, in the user's own terms (their sampler, their seed)."""
    study, seed = ctx.study, ctx.seed
    if cause_id == CauseId.SAMPLER_SEED:
        spec = sampler_spec(study.sampler)
        if spec is None:
            return (
                "# make your sampler factory honour its seed argument\n"
                f"sampler = {study.sampler.split(':')[-1]}(seed={seed})"
            )
        return f"sampler = optuna.samplers.{spec.optuna_class}(seed={seed})"
    if cause_id == CauseId.GLOBAL_RNG:
        modules = "random, numpy as np" + (", torch" if ctx.torch_used else "")
        calls = f"random.seed({seed}); np.random.seed({seed})"
        calls += f"; torch.manual_seed({seed})" if ctx.torch_used else ""
        return f"import {modules}\n{calls}  # before the study starts"
    if cause_id == CauseId.TRIAL_RESEED:
        torch_call = "; torch.manual_seed(seed)" if ctx.torch_used else ""
        return (
            "def objective(trial):\n"
            f"    seed = {seed} * 100_003 + trial.number  # depends on the trial only\n"
            f"    random.seed(seed); np.random.seed(seed){torch_call}\n"
            "    ..."
        )
    if cause_id == CauseId.HASH_SEED:
        return (
            f"PYTHONHASHSEED={seed} python {_script(ctx.target)}  # set before Python starts\n"
            "# or iterate over sorted(...) instead of a set or dict of strings"
        )
    if cause_id == CauseId.THREADS:
        return THREADS_FIX + (
            "\ntorch.set_num_threads(1)  # after import torch" if ctx.torch_used else ""
        )
    if cause_id == CauseId.TORCH_DETERMINISM:
        return (
            "torch.use_deterministic_algorithms(True)\n"
            "torch.backends.cudnn.benchmark = False\n"
            "torch.backends.cudnn.deterministic = True\n"
            "# and before Python starts: CUBLAS_WORKSPACE_CONFIG=:4096:8"
        )
    if cause_id == CauseId.PARALLEL_TRIALS:
        return f"study.optimize(objective, n_trials={study.trials}, n_jobs=1)"
    if cause_id == CauseId.PROCESS_STATE:
        return (
            "# reset module-level state at the start of the objective (caches, counters,\n"
            "# global models), or run each study in a fresh process"
        )
    return _noise_fix(ctx.tolerance)


THREADS_FIX = (
    "import os  # the first lines run: before numpy, torch or a model library loads\n"
    'for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):\n'
    '    os.environ[name] = "1"\n'
    "# or the library's own thread setting (XGBoost nthread=1, LightGBM num_threads=1, "
    "n_jobs=1)"
)
"""Pin the thread count where the libraries read it: their variables before they load."""

NOISE_SOURCES = (
    "# remove the noise source in the objective: clock reads, unseeded RNGs such as\n"
    "# np.random.default_rng() without a seed, thread-order float reductions"
)


def _noise_fix(check: ToleranceCheck | None) -> str:
    """Remove the noise; a tolerance only when one was tried and made the runs agree."""
    if check is None:
        return (
            NOISE_SOURCES + "\n# (no tolerance suggested: none could be checked against the runs)"
        )
    atol = check.atol_text
    if check.passed:
        return (
            NOISE_SOURCES + ";\n# or, if that much noise is acceptable, compare with a tolerance "
            f"(checked: {check.runs} runs × {check.trials} trials agree with it):\n"
            f"# repro-check run ... --atol {atol}"
        )
    d = check.divergence
    if d is None and check.steered_at is None and check.reorder is not None:
        return _reorder_fix(check)
    if d is not None:
        size = f", |Δ| {d.max_abs_diff:.3g}" if d.max_abs_diff else ""
        where = f"with --atol {atol} the runs still part at trial {d.trial}, {d.field}{size}"
    else:
        where = (
            f"from trial {check.steered_at} on the runs get different params; within "
            f"--atol {atol} this time only"
        )
    # a split beyond a tolerance 5-10x the measured noise, or different params: the trials
    # themselves differ, the sampler steered apart by the noise it saw in earlier values
    text = (
        NOISE_SOURCES + ".\n"
        "# no tolerance rescues this check: the noise changes which params the sampler\n"
        f"# suggests next ({where})"
    )
    first = check.agree_until
    if first > 0:
        text += (
            f";\n# or compare only the first {first} trials, which agree within it:\n"
            f"# repro-check run ... --trials {first} --atol {atol}"
        )
    return text


def _reorder_fix(check: ToleranceCheck) -> str:
    noise, gap = check.reorder or (0.0, 0.0)
    atol = check.atol_text
    text = (
        NOISE_SOURCES + ".\n"
        "# no tolerance rescues this check: the noise (about "
        f"{noise:.2g}) is larger than the gaps\n# between trials' values (down to {gap:.2g}), "
        "so it can reorder the trials and the sampler\n# then suggests other params "
        f"({check.runs} runs × {check.trials} trials agreed within --atol {atol} by luck)"
    )
    if check.startup:
        text += (
            f";\n# or compare only the sampler's {check.startup} start-up trials, which do not "
            f"use the values:\n# repro-check run ... --trials {check.startup} --atol {atol}"
        )
    return text


def no_kernel_fix(ops: list[str]) -> str:
    listed = ", ".join(ops)
    return (
        f"# {listed}: no deterministic kernel exists; replace the op(s), or accept the noise:\n"
        "torch.use_deterministic_algorithms(True, warn_only=True)"
    )


_CERTAIN_FIXES = {
    "random.Random() without a seed": "random.Random() has no seed: random.Random(0)",
    "np.random.default_rng() without a seed": (
        "np.random.default_rng() has no seed: np.random.default_rng(0)"
    ),
    "random.seed() without a seed": "random.seed() has no seed: random.seed(0)",
    "np.random.seed() without a seed": "np.random.seed() has no seed: np.random.seed(0)",
    "np.random.RandomState() without a seed": (
        "np.random.RandomState() has no seed: np.random.RandomState(0)"
    ),
    "np.random.SeedSequence() without entropy": (
        "np.random.SeedSequence() has no entropy: np.random.SeedSequence(0)"
    ),
    "torch.seed()": "torch.seed() seeds torch from the OS: torch.manual_seed(0)",
    "torch.Generator().seed()": (
        "torch.Generator().seed() seeds the generator from the OS: call .manual_seed(0) "
        "instead, e.g. torch.Generator().manual_seed(0)"
    ),
}


def located_fix(source: str, kind: str, where: Location) -> str:
    """The fix for one audited call, written for its line."""
    head = f"{where}: "
    if source in _CERTAIN_FIXES:
        return head + _CERTAIN_FIXES[source]
    if kind == "random":
        return (
            head + f"{source} differs in every process: draw from a generator seeded per "
            "trial instead, e.g. random.Random(seed * 100_003 + trial.number)"
        )
    if kind == "clock":
        return (
            head + f"{source}() reads the clock: results that depend on it (a time budget, "
            "an early stop on elapsed time) change with the machine's speed; bound the work "
            "by steps or epochs instead"
        )
    return (
        head + f"{source}: results that depend on the order in which threads or processes "
        "finish can differ; collect results in a fixed order, or use one worker"
    )


def resume_sampler_fix(study: StudySettings, seed: int, at: int, startup: int | None = None) -> str:
    """The paste-able fix for a sampler that lost its random state on resume: reseed it from
    the seed and the trials done (``startup``: TPE's start-up trials, when stopping right
    after them is the other way out)."""
    spec = sampler_spec(study.sampler)
    made = (
        f"optuna.samplers.{spec.optuna_class}" if spec is not None else study.sampler.split(":")[-1]
    )
    text = (
        "# the sampler's random state is not in the storage: reseed it on resume\n"
        "# from the seed and the trials done (deterministic again, though it is\n"
        "# not a straight-through run)\n"
        "study = optuna.load_study(study_name=..., storage=...)\n"
        f"study.sampler = {made}(seed={seed} + len(study.trials))"
    )
    if startup is not None:
        text += (
            f"\n# or stop and resume only right after its {startup} start-up trials\n"
            f"# (n_startup_trials), not at trial {at}"
        )
    return text + (
        "\n# or a sampler that resumes identically; check one with\n"
        f"# repro-check diagnose ... --resume-at {at} --sampler NAME"
    )
