"""The causes a control removes: each is found by switching its control(s) off, every other
control on (an ablation), for objectives and scripts alike. Adding one is one ``KnownCause``
here (with its fix), its id in ``vocab.CauseId`` and a test (see CONTRIBUTING.md)."""

from __future__ import annotations

import linecache
from collections.abc import Sequence

from repro_check.checks.causes.model import (
    Ablation,
    Finding,
    KnownCause,
    StudyFacts,
    ablation_evidence,
    script_path,
    where_runs_part,
)
from repro_check.results.diagnosis import Location
from repro_check.results.records import RunRecord
from repro_check.results.script_notes import SEEDABLE
from repro_check.vocab import CauseId, sampler_spec

# -- sampler_seed


def _first_with_studies(runs: Sequence[RunRecord]) -> RunRecord | None:
    return next((r for r in runs if r.studies), None)


def sampler_fix(runs: Sequence[RunRecord], seed: int) -> str | None:
    """The fix at each line where a script built a sampler without a seed."""
    ref = _first_with_studies(runs)
    if ref is None:
        return None
    lines = []
    for study in ref.studies:
        sampler = study.sampler
        if sampler.seed is not None or sampler.cls not in SEEDABLE:
            continue
        if sampler.at is None:
            where = f"{study.at}: " if study.at else ""
            lines.append(
                f"{where}create_study() has no sampler (Optuna's default {sampler.cls} is "
                f"unseeded): create_study(..., sampler=optuna.samplers.{sampler.cls}(seed={seed}))"
            )
        else:
            lines.append(
                f"{sampler.at}: {sampler.cls}() has no seed: "
                f"optuna.samplers.{sampler.cls}(seed={seed}, ...)"
            )
    return "\n".join(dict.fromkeys(lines)) or None


def sampler_location(runs: Sequence[RunRecord]) -> Location | None:
    """The first line where a script built a seedable sampler without a seed (or created a
    study with Optuna's default one)."""
    ref = _first_with_studies(runs)
    for study in ref.studies if ref is not None else ():
        sampler = study.sampler
        at = sampler.at or study.at
        if sampler.seed is not None or sampler.cls not in SEEDABLE or at is None:
            continue
        file, _, line = at.rpartition(":")
        if file and line.isdigit():
            return Location(file, int(line), linecache.getline(file, int(line)).strip())
    return None


def _sampler_seed_evidence(finding: Finding) -> str:
    if finding.ablation is not None:
        return ablation_evidence(finding)
    # every control on, yet the params differ: the sampler ignores the seed it was given
    return (
        "with every control on, the sampler still proposes different params: "
        f"{where_runs_part(finding.experiment)}"
    )


def _sampler_seed_fix(finding: Finding) -> str:
    ctx = finding.context
    at_lines = sampler_fix(finding.runs_as_written, ctx.seed) if ctx.script else None
    if at_lines is not None:
        return at_lines
    spec = sampler_spec(ctx.study.sampler)
    if spec is None:
        return (
            "# make your sampler factory honour its seed argument\n"
            f"sampler = {ctx.study.sampler.split(':')[-1]}(seed={ctx.seed})"
        )
    return f"sampler = optuna.samplers.{spec.optuna_class}(seed={ctx.seed})"


def _sampler_seed_location(finding: Finding) -> Location | None:
    return sampler_location(finding.runs_as_written) if finding.context.script else None


SAMPLER_SEED = KnownCause(
    CauseId.SAMPLER_SEED,
    "no_sampler_seed (and full control, when its runs get different params)",
    _sampler_seed_evidence,
    _sampler_seed_fix,
    _sampler_seed_location,
    ablations=(Ablation("no_sampler_seed", ("sampler_seed",), "the sampler seed"),),
)

# -- global_rng, trial_reseed


def _streams_used(facts: StudyFacts) -> bool:
    """An objective that never touches a global stream cannot depend on its seeding."""
    return facts.script or facts.global_streams_used


def _global_rng_fix(finding: Finding) -> str:
    ctx = finding.context
    modules = "random, numpy as np" + (", torch" if ctx.torch_used else "")
    calls = f"random.seed({ctx.seed}); np.random.seed({ctx.seed})"
    calls += f"; torch.manual_seed({ctx.seed})" if ctx.torch_used else ""
    return f"import {modules}\n{calls}  # before the study starts"


GLOBAL_RNG = KnownCause(
    CauseId.GLOBAL_RNG,
    "no_global_rng",
    ablation_evidence,
    _global_rng_fix,
    ablations=(
        Ablation(
            "no_global_rng",
            ("global_rng", "trial_reseed"),
            "global RNG seeding",
            wanted=_streams_used,
        ),
    ),
)


def _trial_reseed_fix(finding: Finding) -> str:
    ctx = finding.context
    torch_call = "; torch.manual_seed(seed)" if ctx.torch_used else ""
    return (
        "def objective(trial):\n"
        f"    seed = {ctx.seed} * 100_003 + trial.number  # depends on the trial only\n"
        f"    random.seed(seed); np.random.seed(seed){torch_call}\n"
        "    ..."
    )


TRIAL_RESEED = KnownCause(
    CauseId.TRIAL_RESEED,
    "no_trial_reseed",
    ablation_evidence,
    _trial_reseed_fix,
    ablations=(
        # without per-trial reseeding a run draws other numbers than full control's
        Ablation(
            "no_trial_reseed",
            ("trial_reseed",),
            "per-trial reseeding",
            fresh_runs=True,
            wanted=_streams_used,
        ),
    ),
)

# -- hash_seed, threads


def _hash_seed_fix(finding: Finding) -> str:
    ctx = finding.context
    return (
        f"PYTHONHASHSEED={ctx.seed} python {script_path(ctx.target)}  # set before Python starts\n"
        "# or iterate over sorted(...) instead of a set or dict of strings"
    )


HASH_SEED = KnownCause(
    CauseId.HASH_SEED,
    "no_hash_seed (screened beside full control for an objective)",
    ablation_evidence,
    _hash_seed_fix,
    ablations=(Ablation("no_hash_seed", ("hash_seed",), "a fixed PYTHONHASHSEED"),),
)

THREADS_FIX = (
    "import os  # the first lines run: before numpy, torch or a model library loads\n"
    'for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):\n'
    '    os.environ[name] = "1"\n'
    "# or the library's own thread setting (XGBoost nthread=1, LightGBM num_threads=1, "
    "n_jobs=1)"
)
"""Pin the thread count where the libraries read it: their variables before they load."""


def _threads_fix(finding: Finding) -> str:
    torch_line = "\ntorch.set_num_threads(1)  # after import torch"
    return THREADS_FIX + (torch_line if finding.context.torch_used else "")


THREADS = KnownCause(
    CauseId.THREADS,
    "no_threads (screened beside full control for an objective)",
    ablation_evidence,
    _threads_fix,
    ablations=(
        # the machine's thread count computes other numbers than 1 thread, deterministically
        Ablation("no_threads", ("threads",), "pinned thread counts", fresh_runs=True),
    ),
)

# -- torch_determinism


def _torch_used(facts: StudyFacts) -> bool:
    return facts.torch_used


def _torch_on_cuda(facts: StudyFacts) -> bool:
    return facts.torch_used and facts.device == "cuda"


def _torch_evidence(finding: Finding) -> str:
    if finding.ablation is not None:
        return ablation_evidence(finding)
    return (
        f"torch has no deterministic kernel for {', '.join(finding.ops)}: under "
        f"torch.use_deterministic_algorithms(True) the study stops ({finding.refused})"
    )


def _torch_fix(finding: Finding) -> str:
    if finding.ablation is None:  # no deterministic kernel: nothing to switch on
        return (
            f"# {', '.join(finding.ops)}: no deterministic kernel exists; replace the op(s), "
            "or accept the noise:\ntorch.use_deterministic_algorithms(True, warn_only=True)"
        )
    return (
        "torch.use_deterministic_algorithms(True)\n"
        "torch.backends.cudnn.benchmark = False\n"
        "torch.backends.cudnn.deterministic = True\n"
        "# and before Python starts: CUBLAS_WORKSPACE_CONFIG=:4096:8"
    )


TORCH_DETERMINISM = KnownCause(
    CauseId.TORCH_DETERMINISM,
    "no_torch_determinism, no_cudnn (and full control, when torch refuses an op)",
    _torch_evidence,
    _torch_fix,
    ablations=(
        # torch's default kernels compute other numbers than the deterministic ones
        Ablation(
            "no_torch_determinism",
            ("torch_determinism",),
            "torch deterministic algorithms",
            fresh_runs=True,
            wanted=_torch_used,
        ),
        Ablation("no_cudnn", ("cudnn",), "the cuDNN flags", fresh_runs=True, wanted=_torch_on_cuda),
    ),
)

CAUSES = (SAMPLER_SEED, GLOBAL_RNG, TRIAL_RESEED, HASH_SEED, THREADS, TORCH_DETERMINISM)
"""In the order their ablations run (a script's; an objective screens hash_seed and threads
beside full control and runs them last, only if that screen parts)."""
