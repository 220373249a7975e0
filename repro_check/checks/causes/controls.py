"""The causes a control removes: each is found by switching its control(s) off, every other
control on (an ablation), for objectives and scripts alike. Adding one is one ``KnownCause``
here (with its fix), its id in ``vocab.CauseId`` and a test (see CONTRIBUTING.md). The
sampler's seed (``sampler``) and the global streams (``global_streams``) have modules of their
own: finding where they enter the user's code is most of their work."""

from __future__ import annotations

from repro_check.checks.causes.model import (
    Ablation,
    Finding,
    KnownCause,
    StudyFacts,
    ablation_evidence,
    script_path,
)
from repro_check.vocab import CauseId

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

CAUSES = (HASH_SEED, THREADS, TORCH_DETERMINISM)
"""In the order their ablations run, after ``sampler.CAUSES`` and ``global_streams.CAUSES``
(see the registry's ``CAUSES``)."""
