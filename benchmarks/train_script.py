"""A user's ``train.py`` for ``bench_script.py``: a whole seeded study in one script.

It is what script mode exists for: a file that builds its own study and runs it, with no
``objective`` handed to repro-check. The study is seeded (``TPESampler(seed=0)``), so every
replicate is identical and ``repro-check run train_script.py`` reports REPRODUCIBLE; it prints
its best value, as a training script prints its score, so the benchmark can check that the
by-hand runs and repro-check's replicates ran the same study.

Each trial burns a fixed number of pure-Python loop iterations (``REPRO_CHECK_BENCH_SPIN``,
calibrated by ``bench_script.py`` to ``--work-ms``): CPU-bound, GIL-holding and deterministic,
like a real objective (``time.sleep`` would let two replicates overlap on fewer cores than they
need and flatter ``--workers 2``). ``REPRO_CHECK_BENCH_TRIALS`` sets the number of trials.
"""

from __future__ import annotations

import os
from typing import Any

import optuna

SPIN_ENV = "REPRO_CHECK_BENCH_SPIN"
TRIALS_ENV = "REPRO_CHECK_BENCH_TRIALS"


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


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="bench", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=int(os.environ.get(TRIALS_ENV, "100")))
    print(repr(study.best_value))


if __name__ == "__main__":
    main()
