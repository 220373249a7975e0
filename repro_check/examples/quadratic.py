"""A deterministic objective: reproducible whenever the sampler is seeded."""

from __future__ import annotations

from typing import Any


def objective(trial: Any) -> float:
    x: float = trial.suggest_float("x", -10.0, 10.0)
    y: int = trial.suggest_int("y", -5, 5)
    kind = trial.suggest_categorical("kind", ["linear", "square"])
    penalty = abs(y) if kind == "linear" else y * y
    return (x - 2.0) ** 2 + penalty
