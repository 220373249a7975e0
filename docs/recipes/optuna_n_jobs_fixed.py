"""Optuna with parallel trials, fixed: ask in order, evaluate in threads, tell in order.

The params are sampled in the main thread, one trial after another (``study.ask`` with the
search space, so every param is drawn at ask time), by a sampler that is never reseeded; only
the evaluation runs in the thread pool, and the trials are told back in the order they were
asked. Each batch of four trials is sampled from the same history in every run, so the runs
agree, and the four evaluations still overlap.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import optuna
from optuna.distributions import FloatDistribution

SEED = 0
SPACE = {"x": FloatDistribution(-10, 10), "y": FloatDistribution(-10, 10)}


def evaluate(params: dict[str, float]) -> float:
    time.sleep(0.01)  # a stand-in for training: the time threads overlap
    return (params["x"] - 2) ** 2 + (params["y"] + 1) ** 2


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(4):  # 4 batches of 4 trials: 16 trials, as n_jobs=4 ran them
            trials = [study.ask(SPACE) for _ in range(4)]
            values = list(pool.map(evaluate, [trial.params for trial in trials]))
            for trial, value in zip(trials, values, strict=True):
                study.tell(trial, value)
    print(study.best_params)
