"""Shared record factories for tests that build runs by hand (no optuna, no processes)."""

from __future__ import annotations

from typing import Any

from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord


def trial(
    number: int,
    value: float | None = 1.0,
    *,
    state: str = "COMPLETE",
    params: dict[str, Any] | None = None,
    values: tuple[float, ...] | None = None,
    iv: dict[int, float] | None = None,
    error: str | None = None,
) -> TrialRecord:
    """A trial with ``params={"x": 0.5}`` and ``values=(value,)`` unless told otherwise."""
    if values is None and value is not None:
        values = (value,)
    return TrialRecord(
        number=number,
        state=state,
        params={"x": 0.5} if params is None else params,
        values=values,
        intermediate_values=iv or {},
        error=error,
    )


def run(
    index: int,
    trials: list[TrialRecord] | tuple[TrialRecord, ...],
    *,
    status: str = "ok",
    directions: tuple[str, ...] = ("minimize",),
) -> RunRecord:
    return RunRecord(
        index=index, seed=0, status=status, trials=tuple(trials), directions=directions
    )
