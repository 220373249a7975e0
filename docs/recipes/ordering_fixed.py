"""Ordering, fixed: the feature list keeps the frame's column order.

A list comprehension over ``df.columns`` keeps the order the columns were made in, which no
hash seed changes (``sorted(set(...))`` works too). Dicts keep insertion order and are safe;
sets, and ``frozenset``, of strings (or of anything hashed by its text or bytes) are not.
"""

import numpy as np
import optuna
import pandas as pd

SEED = 0
rng = np.random.default_rng(SEED)
df = pd.DataFrame(rng.normal(size=(100, 20)), columns=[f"sensor_{i:02d}" for i in range(20)])
df["target"] = df.to_numpy() @ np.linspace(-1, 1, 20) + rng.normal(scale=0.1, size=100)

features = [name for name in df.columns if name != "target"]


def objective(trial: optuna.Trial) -> float:
    dropped = trial.suggest_categorical("drop", features)
    kept = [name for name in features if name != dropped]
    x = df[kept].to_numpy()
    coef, *_ = np.linalg.lstsq(x, df["target"].to_numpy(), rcond=None)
    return float(np.mean((x @ coef - df["target"].to_numpy()) ** 2))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=5)
    print(study.best_params)
