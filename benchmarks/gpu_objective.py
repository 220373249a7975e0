"""A stand-in for a GPU-bound objective: each trial waits ~100 ms (the GPU's time, not the CPU's),
so the CPU-simulated schedule of ``bench_gpus.py`` measures placement, not these 2 cores."""

from __future__ import annotations

import time
from typing import Any


def objective(trial: Any) -> float:
    x: float = trial.suggest_float("x", -10.0, 10.0)
    time.sleep(0.1)
    return (x - 2.0) ** 2
