"""An objective that uses the global ``random`` module without seeding it.

Reproducible under repro-check (it seeds the global RNGs before each trial), but not in the
user's own script: ``repro-check diagnose`` reports ``global_rng`` as a cause.
"""

from __future__ import annotations

import random
from typing import Any


def objective(trial: Any) -> float:
    x: float = trial.suggest_float("x", -10.0, 10.0)
    return (x - 2.0) ** 2 + random.gauss(0.0, 0.1)
