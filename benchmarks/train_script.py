"""A user's ``train.py`` for ``bench_script.py``: a whole seeded study in one script.

It is what script mode exists for: a file that builds its own study and runs it, with no
``objective`` handed to repro-check. The study is seeded (``TPESampler(seed=0)``), so every
replicate is identical and ``repro-check run train_script.py`` reports REPRODUCIBLE; it prints
its best value, as a training script prints its score, so the benchmark can check that the
by-hand runs and repro-check's replicates ran the same study.

Its objective is ``bench_objective.py``'s (imported from beside it, as a script imports its
own modules): each trial burns a fixed number of pure-Python loop iterations
(``REPRO_CHECK_BENCH_SPIN``,
calibrated by ``bench_script.py`` to ``--work-ms``): CPU-bound, GIL-holding and deterministic,
like a real objective (``time.sleep`` would let two replicates overlap on fewer cores than they
need and flatter ``--workers 2``). ``REPRO_CHECK_BENCH_TRIALS`` sets the number of trials.
"""

from __future__ import annotations

import os

import optuna
from bench_objective import burn, objective  # the same calibrated work and study

TRIALS_ENV = "REPRO_CHECK_BENCH_TRIALS"

__all__ = ["burn", "main", "objective"]  # bench_script calibrates with this script's burn


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="bench", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=int(os.environ.get(TRIALS_ENV, "100")))
    print(repr(study.best_value))


if __name__ == "__main__":
    main()
