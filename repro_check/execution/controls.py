"""The seed and determinism controls. Applied inside a worker, before the user's module loads.

torch is never imported just to control it (that would cost every non-torch user ~2 s per
replicate): an import hook applies the torch controls the moment the objective imports torch.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from repro_check.execution.devices import DEVICE_ENV
from repro_check.execution.rng_hooks import AfterImport
from repro_check.plan.settings import Controls

CUBLAS_WORKSPACE = ":4096:8"
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def worker_env(
    base: Mapping[str, str],
    controls: Controls,
    *,
    seed: int,
    threads: int,
    device: str,
    hide_gpus: bool = False,
) -> dict[str, str]:
    """The environment a worker process starts with: ``base`` (the user's shell) as it is, but
    for what an enabled control sets. Some controls must exist before Python starts
    (``PYTHONHASHSEED``) or before a library loads (thread counts). With every control off this
    is the environment ``python train.py`` gets, plus the check's own ``REPRO_CHECK_DEVICE``;
    ``hide_gpus`` (``--device cpu`` asked for) empties ``CUDA_VISIBLE_DEVICES``."""
    env = dict(base)
    if controls.hash_seed:
        env["PYTHONHASHSEED"] = str(seed)
    if controls.threads:
        for name in THREAD_ENV_VARS:
            env[name] = str(threads)
    if controls.torch_determinism:
        env["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    if hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    env[DEVICE_ENV] = device
    return env


def trial_seed(seed: int, number: int) -> int:
    """A 32-bit seed for one trial, a function of (seed, trial number) only."""
    import numpy as np

    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


_last_seed: list[int] = []
"""The seed the global RNGs last got (at start, or this trial's); torch, if the objective
imports it only now, gets the same, as if it had been imported before the seeding."""


def seed_global_rngs(seed: int) -> None:
    """Seed ``random``, NumPy's global RNG and, if the objective uses it, torch (all devices).
    NumPy is not imported just to seed it (it reads its thread variables when it loads, and a
    script may set them first): if nothing imported it yet, it is seeded when something does,
    with the seed the global RNGs last got."""
    _last_seed[:] = [seed]
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None and hasattr(np, "random"):
        np.random.seed(seed)
    elif not _numpy_armed:
        _numpy_armed.append(after_import("numpy", _seed_numpy))
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)


_numpy_armed: list[str] = []


def _seed_numpy(np: ModuleType) -> None:
    if _last_seed:
        np.random.seed(_last_seed[0])


def after_import(name: str, callback: Callable[[ModuleType], None]) -> str:
    """Run ``callback(module)`` as soon as ``name`` is imported: now if it already is
    ("applied"), else right after its first import ("armed"). Nothing is imported for it."""
    if name in sys.modules:
        callback(sys.modules[name])
        return "applied"
    sys.meta_path.insert(0, AfterImport(name, callback))
    return "armed"


def apply_torch_controls(
    torch: Any, controls: Controls, seed: int, threads: int, warn_only: bool
) -> None:
    """Each torch control ``controls`` enables: the thread count, seeding, determinism."""
    if controls.threads:
        torch.set_num_threads(threads)
    if controls.global_rng or (controls.trial_reseed and _last_seed):
        torch.manual_seed(_last_seed[0] if _last_seed else seed)
    if controls.torch_determinism:
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
    if controls.cudnn:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def touches_torch(controls: Controls) -> bool:
    """Whether any control on sets something in torch (its threads, seed or flags)."""
    return (
        controls.threads
        or controls.global_rng
        or controls.trial_reseed
        or controls.torch_determinism
        or controls.cudnn
    )


def arm_torch(controls: Controls, seed: int, threads: int, warn_only: bool = False) -> str:
    """Make sure the torch controls apply whenever torch loads. Returns torch's status:
    "applied" (already imported), "armed" (applied on import), "not installed", or "not
    needed" (no control on touches torch: as written, nothing to say about it)."""

    def apply(module: ModuleType) -> None:
        apply_torch_controls(module, controls, seed, threads, warn_only)

    if not touches_torch(controls):
        return "not needed"
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return "not installed"
    return after_import("torch", apply)


def torch_note(status: str) -> str | None:
    """A report note for how the torch controls went, or None when they simply applied."""
    if status == "not installed":
        return "torch is not installed: torch seeding and determinism controls were skipped"
    if status == "armed" and "torch" not in sys.modules:
        return "the objective did not import torch: torch controls were not needed"
    return None
