"""Baselines: a committed run report that later runs must still match.

A baseline answers a different question from ``run``: not "do the replicates agree?" but "does
this commit still produce the result we recorded?" (a refactor that moves the best params fails).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from repro_check.plan.settings import Tolerance
from repro_check.results.baseline import BaselineCheck, finished_reference, reference
from repro_check.results.comparison import first_divergence
from repro_check.results.records import RunRecord


def check_against(
    path: str,
    baseline_runs: Sequence[RunRecord],
    runs: Sequence[RunRecord],
    tol: Tolerance,
    settings_changed: Sequence[str] = (),
) -> BaselineCheck:
    """Compare every replicate with every finished run of the baseline (its reference run, the
    first finished one, leads): a baseline whose own runs disagree matches nothing. Baseline runs
    are numbered -1, -2, ... in the divergence (-1 the reference)."""
    first = finished_reference(baseline_runs, f"baseline {path}")
    saved = [first, *(r for r in baseline_runs if r.finished and r is not first)]
    before = [dataclasses.replace(run, index=-1 - k) for k, run in enumerate(saved)]
    names = ["baseline" if k == 0 else f"baseline run {run.index}" for k, run in enumerate(saved)]
    names += [f"run {run.index}" for run in runs]
    divergence = first_divergence([*before, *runs], tol, names)
    now = reference(runs)
    return BaselineCheck(
        path,
        divergence,
        first.best_value,
        now.best_value,
        first.best_params,
        now.best_params,
        tuple(settings_changed),
    )
