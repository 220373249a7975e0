"""Resolve ``--device auto|cpu|cuda`` in the parent without importing torch (2 s) when we can.

``import repro_check`` loads this module for DEVICE_ENV (in every worker too), so what only
``resolve`` needs (subprocess, glob) is imported there."""

from __future__ import annotations

import os
import sys

from repro_check.errors import DeviceError

DEVICE_ENV = "REPRO_CHECK_DEVICE"
"""Environment variable in which each worker receives the resolved device ("cpu" or "cuda")."""

_PROBE = "import torch; print(int(torch.cuda.is_available()))"


def _driver_present() -> bool:
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/proc/driver/nvidia")


def _cuda_works() -> bool:
    """Ask a throwaway interpreter; the parent itself never imports torch."""
    import subprocess

    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.stdout.strip() == "1"


def resolve(requested: str) -> str:
    """ "cpu" or "cuda". ``auto`` picks CUDA when torch can use it; ``cuda`` insists on it."""
    if requested == "cpu":
        return "cpu"
    from repro_check.execution import gpus

    if gpus.fake() is not None:  # the test suite's pretend GPUs (never set in real checks)
        if gpus.discover():
            return "cuda"
        if requested == "cuda":
            raise DeviceError("--device cuda: CUDA is not available (torch sees no GPU)")
        return "cpu"
    import importlib.util

    has_torch = importlib.util.find_spec("torch") is not None
    if requested == "auto":
        return "cuda" if has_torch and _driver_present() and _cuda_works() else "cpu"
    if not has_torch:
        raise DeviceError("--device cuda needs torch, which is not installed")
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "" or not _cuda_works():
        raise DeviceError("--device cuda: CUDA is not available (torch sees no GPU)")
    return "cuda"
