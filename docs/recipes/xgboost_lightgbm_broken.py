"""XGBoost and LightGBM, broken: the models' seed comes from an unseeded NumPy Generator.

Both libraries take ``random_state=`` a NumPy Generator and draw their C++ seed from it; this
one is made without a seed (``np.random.default_rng()``), so the rows and columns each tree
subsamples (``subsample``, ``colsample_bytree``) differ in every run, and so do the scores (a
float64 mean over other predictions; agreeing by chance is about 1 in 2**52 per trial).
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
rng = np.random.default_rng()


def objective(trial: optuna.Trial) -> float:
    library = trial.suggest_categorical("library", ["lightgbm", "xgboost"])
    common = {
        "n_estimators": 20,
        "learning_rate": trial.suggest_float("learning_rate", 0.05, 0.3, log=True),
        "subsample": 0.7,
        "colsample_bytree": 0.7,
    }
    if library == "lightgbm":
        model = lgb.LGBMRegressor(**common, subsample_freq=1, verbose=-1, random_state=rng)
    else:
        model = xgb.XGBRegressor(**common, max_depth=3, random_state=rng)
    model.fit(X_train, y_train)
    return float(np.mean((model.predict(X_valid) - y_valid) ** 2))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=6)
    print(study.best_params)
