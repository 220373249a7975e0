"""A training script as users write them: ``python -m repro_check.examples.train [--seed N]``.

Without ``--seed`` its sampler is unseeded (the founding story: "seeded" everything else, still
different best params every run); ``--seed 42`` makes it reproducible as written.
"""

from __future__ import annotations

import argparse
from typing import Any

import optuna


def objective(trial: Any) -> float:
    lr: float = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    layers: int = trial.suggest_int("layers", 1, 4)
    # a stand-in for a training run: a smooth loss with its best at lr=0.01, 2 layers
    return float((lr - 0.01) ** 2 * 1e4 + (layers - 2) ** 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="the sampler's seed")
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="train", sampler=optuna.samplers.TPESampler(seed=args.seed)
    )
    study.optimize(objective, n_trials=args.trials)
    print(f"best params: {study.best_params}")


if __name__ == "__main__":
    main()
