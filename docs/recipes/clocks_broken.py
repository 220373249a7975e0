"""Clocks, broken: each trial trains for a time budget, so its length follows the machine.

``while time.perf_counter() < deadline`` runs as many steps as fit in 20 ms: the count
follows the CPU's speed, its load and the scheduler, so every run trains each trial for
another number of steps and ends at another loss (the trial's ``steps`` attribute shows it).
The step count lands in the thousands; six trials all landing on the same counts in two runs
never happened in our measurements.
"""

import time

import numpy as np
import optuna

SEED = 0
rng = np.random.default_rng(SEED)
X = rng.normal(size=(256, 4))
y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(scale=0.5, size=256)


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    batches = np.random.default_rng(SEED + trial.number)
    w = np.zeros(4)
    steps = 0
    deadline = time.perf_counter() + 0.02  # a 20 ms budget per trial
    while time.perf_counter() < deadline:
        rows = batches.integers(0, len(X), size=8)
        w -= lr * X[rows].T @ (X[rows] @ w - y[rows]) / len(rows)
        steps += 1
    trial.set_user_attr("steps", steps)
    return float(np.mean((X @ w - y) ** 2))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=6)
    print(study.best_params)
