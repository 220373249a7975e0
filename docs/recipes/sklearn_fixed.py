"""scikit-learn, fixed: an int ``random_state`` for every estimator and splitter.

With an int, the forest's bootstrap samples and split features and the folds are drawn from
that seed alone. It stays reproducible with ``n_jobs=2``: the forest's per-tree seeds are
drawn from its ``random_state`` before any worker starts, and each joblib worker process gets
the estimator, seed included, as an argument. ``SEED + trial.number`` makes each trial's
draws its own, whatever ran before it.
"""

import numpy as np
import optuna
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_score

SEED = 0
data_rng = np.random.default_rng(SEED)
X = data_rng.normal(size=(120, 5))
y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + data_rng.normal(scale=0.3, size=120)


def objective(trial: optuna.Trial) -> float:
    forest = RandomForestRegressor(
        n_estimators=10,
        max_depth=trial.suggest_int("max_depth", 2, 6),
        max_features=trial.suggest_float("max_features", 0.3, 1.0),
        random_state=SEED + trial.number,
    )
    folds = KFold(n_splits=3, shuffle=True, random_state=SEED)
    scores = cross_val_score(forest, X, y, cv=folds, scoring="neg_mean_squared_error", n_jobs=2)
    return float(-scores.mean())


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=4)
    print(study.best_params)
