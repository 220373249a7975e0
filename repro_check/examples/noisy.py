"""A nondeterministic objective: noise from an RNG seeded by the OS, which no control reaches."""

from __future__ import annotations

import random
from typing import Any

_entropy = random.SystemRandom()


def objective(trial: Any) -> float:
    x: float = trial.suggest_float("x", -10.0, 10.0)
    return (x - 2.0) ** 2 + _entropy.gauss(0.0, 0.1)
