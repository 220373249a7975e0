"""Optuna with ``n_jobs > 1``, broken: a seeded sampler, four threads.

With ``n_jobs`` above 1, ``study.optimize`` reseeds the sampler from the OS in every worker
thread (``sampler.reseed_rng()``), so ``seed=0`` no longer decides the params, and the threads
finish trials in an order the scheduler picks. The first trials' params are drawn at random
from ``[-10, 10]``: two runs drawing the same float is about 1 in 2**52, every time.
"""

import time

import optuna

SEED = 0


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    time.sleep(0.01)  # a stand-in for training: the time threads overlap
    return (x - 2) ** 2 + (y + 1) ** 2


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=16, n_jobs=4)
    print(study.best_params)
