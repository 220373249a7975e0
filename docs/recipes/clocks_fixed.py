"""Clocks, fixed: a step budget instead of a time budget.

``for _ in range(STEPS)`` trains every trial for the same number of steps on every machine and
every run, so the loss repeats. To keep a run within a wall-clock limit, measure once how
many steps fit and write that number down; a clock may still decide when to *stop the whole
job* (then the check reports the trials that finished), never how much a trial computes.
"""

import numpy as np
import optuna

SEED = 0
STEPS = 2000  # about what 20 ms held on the machine that wrote this
rng = np.random.default_rng(SEED)
X = rng.normal(size=(256, 4))
y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(scale=0.5, size=256)


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    batches = np.random.default_rng(SEED + trial.number)
    w = np.zeros(4)
    for _ in range(STEPS):
        rows = batches.integers(0, len(X), size=8)
        w -= lr * X[rows].T @ (X[rows] @ w - y[rows]) / len(rows)
    trial.set_user_attr("steps", STEPS)
    return float(np.mean((X @ w - y) ** 2))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=6)
    print(study.best_params)
