"""XGBoost and LightGBM, fixed: an int seed per trial, a fixed thread count, deterministic.

- ``random_state=SEED + trial.number``: an int seeds the C++ side directly; each trial's
  subsampling depends on the trial alone.
- ``n_jobs=2`` on both: a fixed thread count rather than one per core, so another machine
  adds its float sums in the same grouping.
- LightGBM's ``deterministic=True`` with ``force_row_wise=True``: LightGBM otherwise times
  both ways of building histograms at start-up and keeps the faster one, a choice a busy
  machine can flip.
"""

import lightgbm as lgb
import numpy as np
import optuna
import xgboost as xgb

SEED = 0
data_rng = np.random.default_rng(SEED)
X = data_rng.normal(size=(300, 8))
y = X @ data_rng.normal(size=8) + data_rng.normal(scale=0.5, size=300)
X_train, X_valid, y_train, y_valid = X[:200], X[200:], y[:200], y[200:]


def objective(trial: optuna.Trial) -> float:
    library = trial.suggest_categorical("library", ["lightgbm", "xgboost"])
    common = {
        "n_estimators": 20,
        "learning_rate": trial.suggest_float("learning_rate", 0.05, 0.3, log=True),
        "subsample": 0.7,
        "colsample_bytree": 0.7,
        "random_state": SEED + trial.number,
        "n_jobs": 2,
    }
    if library == "lightgbm":
        model = lgb.LGBMRegressor(
            **common, subsample_freq=1, verbose=-1, deterministic=True, force_row_wise=True
        )
    else:
        model = xgb.XGBRegressor(**common, max_depth=3)
    model.fit(X_train, y_train)
    return float(np.mean((model.predict(X_valid) - y_valid) ** 2))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=6)
    print(study.best_params)
