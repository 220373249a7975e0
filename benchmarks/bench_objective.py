"""The benchmark's objective: the bundled quadratic plus a fixed amount of CPU work per trial.

``repro_check.examples.quadratic`` costs microseconds, so a study of it is almost all Optuna
bookkeeping and process start-up, which makes any fixed per-process cost look huge. Real
objectives train or simulate something. This one burns a fixed number of pure-Python loop
iterations per trial (``REPRO_CHECK_BENCH_SPIN``, set by ``bench_overhead.py`` after calibrating
it to ``--work-ms``), so:

* the work is CPU-bound and holds the GIL, like a real objective (``time.sleep`` would let two
  workers overlap on fewer cores than they need and flatter ``--workers 2``);
* it is deterministic (no clock reads inside the study), so every replicate is identical and
  repro-check reports REPRODUCIBLE;
* the hand-run baseline and repro-check's workers execute exactly the same code.
"""

from __future__ import annotations

import os
from typing import Any

SPIN_ENV = "REPRO_CHECK_BENCH_SPIN"


def burn(iterations: int) -> float:
    """Deterministic CPU work: ``iterations`` trips round a small pure-Python loop."""
    acc = 0.0
    for i in range(iterations):
        acc += (i % 7) * 1e-9
    return acc


def objective(trial: Any) -> float:
    x: float = trial.suggest_float("x", -10.0, 10.0)
    y: int = trial.suggest_int("y", -5, 5)
    kind = trial.suggest_categorical("kind", ["linear", "square"])
    burn(int(os.environ.get(SPIN_ENV, "0")))
    penalty = abs(y) if kind == "linear" else y * y
    return (x - 2.0) ** 2 + penalty
