"""scikit-learn, broken: no ``random_state``, so the forest and the folds are drawn afresh.

A ``RandomForestRegressor`` draws its bootstrap samples and split features, and
``KFold(shuffle=True)`` its folds, from NumPy's global generator when ``random_state`` is None:
unseeded, so every run scores other forests on other folds (a mean of float64 errors; two
runs agreeing by chance is about 1 in 2**52 per trial). The cross-validation runs in two
joblib worker processes (``n_jobs=2``).
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
    )
    folds = KFold(n_splits=3, shuffle=True)
    scores = cross_val_score(forest, X, y, cv=folds, scoring="neg_mean_squared_error", n_jobs=2)
    return float(-scores.mean())


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=4)
    print(study.best_params)
