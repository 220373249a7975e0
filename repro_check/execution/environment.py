"""The environment fingerprint: what a result may depend on, and nothing else.

Only allow-listed environment variables are recorded (never the whole environment: it holds
tokens and passwords). Collected inside a worker, so it describes where the study really ran.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

RELEVANT_ENV_VARS = (
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_LAUNCH_BLOCKING",
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "OPENBLAS_CORETYPE",
    "MKL_CBWR",
    "TF_DETERMINISTIC_OPS",
    "REPRO_CHECK_DEVICE",
)
PACKAGES = ("repro-check-optuna", "optuna", "numpy", "scipy", "torch", "scikit-learn", "cmaes")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _package_versions() -> dict[str, str]:
    from importlib import metadata  # here, not at import: ~35 ms of every worker's start-up

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _torch_info(torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": None,
        "gpus": [],
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    try:
        if torch.backends.cudnn.is_available():
            info["cudnn"] = torch.backends.cudnn.version()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:
        info["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return info


def _gpu_info(torch: Any) -> dict[str, Any] | None:
    """The GPU this worker ran on: the one the parent pinned it to (``gpus.ASSIGNED_ENV``),
    overridden by what torch saw when the objective used CUDA (name, UUID, capability; the
    driver from the kernel module). None when it had no GPU of its own."""
    from repro_check.execution import gpus

    info = gpus.assigned()
    try:
        if torch is not None and torch.cuda.is_initialized():
            props = torch.cuda.get_device_properties(torch.cuda.current_device())
            uuid = str(getattr(props, "uuid", "") or "")
            seen = {
                "name": props.name,
                "uuid": uuid and "GPU-" + uuid.removeprefix("GPU-"),
                "compute_capability": f"{props.major}.{props.minor}",
                "driver": gpus.driver_version(),
            }
            info = {**(info or {"index": torch.cuda.current_device()}), **seen}
    except Exception as exc:  # a broken CUDA set-up must not lose the run's results
        info = {**(info or {}), "error": _one_line(exc)}
    return info


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def threads_used(pinned: int | None) -> int | None:
    """How many threads this process's libraries use: the pinned count, else torch's own (if
    imported), else ``OMP_NUM_THREADS`` as the shell set it, else one per core (OpenMP's and
    OpenBLAS's default)."""
    if pinned is not None:
        return pinned
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        try:
            return int(torch.get_num_threads())
        except Exception:
            pass
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(omp) if omp.isdigit() and int(omp) > 0 else os.cpu_count()


_at_start: dict[str, str] | None = None
"""The relevant variables as the job found them (``remember_start``), before the objective or
script could change its own environment: what the shell gave it."""


def _relevant_env() -> dict[str, str]:
    return {name: os.environ[name] for name in RELEVANT_ENV_VARS if name in os.environ}


def remember_start() -> None:
    """Note the relevant variables now, before the user's code runs."""
    global _at_start
    _at_start = _relevant_env()


def collect(threads: int | None) -> dict[str, Any]:
    """The fingerprint of this process. torch details only if the objective imported torch;
    ``gpu`` only when the worker was pinned to a GPU or used CUDA. ``threads`` is the count
    the ``threads`` control pinned, None when it was off (the shell's own counts)."""
    torch = sys.modules.get("torch")
    environment = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "packages": _package_versions(),
        "torch": _torch_info(torch) if torch is not None else None,
        "threads": threads_used(threads),
        "threads_pinned": threads is not None,
        "env": dict(_at_start) if _at_start is not None else _relevant_env(),
    }
    gpu = _gpu_info(torch)
    if gpu is not None:
        environment["gpu"] = gpu
    return environment
