"""Resume, broken: a preemptible job whose seeded sampler restarts its random stream.

The script keeps its study in a SQLite file and loads it back when restarted
(``load_if_exists=True``), as a job on preemptible machines does. ``RandomSampler(seed=0)``
keeps its random state in the sampler object, not in the storage: a restarted process builds
it afresh, so the trials after the restart replay the first draws of ``seed=0`` instead of
continuing them. Check it as a restart would happen: ``--trials 8 --resume-at 4`` stops each run
after 4 trials and restarts it; the resumed runs' params from trial 4 on are trial 0's again,
never what a straight-through run draws (two floats in [-10, 10] agreeing by chance: about
1 in 2**52).
"""

import optuna

SEED = 0


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_float("y", -10, 10)
    return (x - 2) ** 2 + (y + 1) ** 2


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="search",
        storage="sqlite:///resume_recipe.db",
        load_if_exists=True,
        sampler=optuna.samplers.RandomSampler(seed=SEED),
    )
    study.optimize(objective, n_trials=8 - len(study.trials))
    print(study.best_params)
