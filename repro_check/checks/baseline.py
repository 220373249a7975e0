"""Baselines: a committed run report that later runs must still match.

A baseline answers a different question from ``run``: not "do the replicates agree?" but "does
this commit still produce the result we recorded?" (a refactor that moves the best params fails).
A script's baseline is compared study by study (every study the script made, in order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from repro_check.errors import ConfigError
from repro_check.plan.settings import Tolerance
from repro_check.plan.targets import is_script
from repro_check.results.baseline import BaselineCheck, finished_reference, reference
from repro_check.results.comparison import Divergence, first_divergence
from repro_check.results.records import RunRecord, comparable_runs
from repro_check.results.studies import studies_difference


def check_against(
    path: str,
    baseline_runs: Sequence[RunRecord],
    runs: Sequence[RunRecord],
    tol: Tolerance,
    settings_changed: Sequence[str] = (),
    script: bool = False,
) -> BaselineCheck:
    """Compare every replicate with every finished run of the baseline (its reference run, the
    first finished one, leads) by the same rules as ``run`` (the same trial comparison and, for
    a script, the same study rule with its unfinished trials): a baseline whose own runs
    disagree matches nothing. Baseline runs
    are numbered -1, -2, ... in the divergence (-1 the reference). ``script``: the runs are a
    script's, compared study by study (``script_divergence``)."""
    first = finished_reference(baseline_runs, f"baseline {path}")
    saved = [first, *(r for r in baseline_runs if r.finished and r is not first)]
    before = [dataclasses.replace(run, index=-1 - k) for k, run in enumerate(saved)]
    names = ["baseline" if k == 0 else f"baseline run {run.index}" for k, run in enumerate(saved)]
    names += [f"run {run.index}" for run in runs]
    # a baseline saved before distributions/system attributes were recorded: compared on the rest
    compared = comparable_runs([*before, *runs])
    if script:
        divergence, _study = script_divergence(compared, tol, names)
    else:
        divergence = first_divergence(compared, tol, names)
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


def check_mode(path: str, baseline_mode: str, baseline_target: str, target: str) -> None:
    """A baseline of a script matches only a script check, and one of an objective only an
    objective check: comparing the two would compare different studies. Raises ``ConfigError``."""
    mode = "script" if is_script(target) else "objective"
    if baseline_mode != mode:
        article = "an" if baseline_mode[:1] in "aeiou" else "a"
        raise ConfigError(
            f"baseline {path} is {article} {baseline_mode}-mode report (of {baseline_target}), but "
            f"{target} is checked in {mode} mode; save a new baseline with --save-baseline"
        )


STUDIES_FIELD = "studies"
"""The divergence ``field`` of script runs that made different studies (count, names or
directions)."""


def _study_structure(runs: Sequence[RunRecord], names: Sequence[str]) -> Divergence | None:
    """Where the finished runs' lists of studies first differ from the first one's (count,
    names, directions, unfinished trials: ``studies_difference``, as ``run`` compares them),
    or None."""
    finished = [k for k, run in enumerate(runs) if run.finished]
    if len(finished) < 2:
        return None
    ref = runs[finished[0]]
    for k in finished[1:]:
        run = runs[k]
        why = studies_difference(ref, run, names[finished[0]], names[k])
        if why is not None:
            detail = f"the runs created different studies: {why}"
            return Divergence(0, STUDIES_FIELD, (ref.index, run.index), None, None, detail)
    return None


def script_divergence(
    runs: Sequence[RunRecord], tol: Tolerance, names: Sequence[str]
) -> tuple[Divergence | None, int | None]:
    """Script runs compared study by study: first whether the finished ones made the same
    studies (count, names, directions), then each study trial by trial, in creation order, among
    the runs that made it (an unfinished run on the studies it has, as ``first_divergence``
    compares it on the trials it has). Returns the first divergence, its detail naming the
    study, and that study's index (None when the studies themselves differ). ``names`` label
    the runs, in order."""
    structure = _study_structure(runs, names)
    if structure is not None:
        return structure, None
    most = max((len(run.studies) for run in runs), default=0)
    for i in range(most):
        having = [k for k, run in enumerate(runs) if len(run.studies) > i]
        if len(having) < 2:
            continue
        views = [runs[k].studies[i].as_run(runs[k]) for k in having]
        found = first_divergence(views, tol, [names[k] for k in having])
        if found is not None:
            study = runs[having[0]].studies[i]
            detail = f"study {i} {study.name!r}: {found.detail}"
            return dataclasses.replace(found, detail=detail), i
    return None, None
