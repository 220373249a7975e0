"""Baselines: a committed run report that later runs must still match.

A baseline answers a different question from ``run``: not "do the replicates agree?" but "does
this commit still produce the result we recorded?" (a refactor that moves the best params fails).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.compare import Divergence, first_divergence
from repro_check.records import RunRecord, encode_float, encode_params
from repro_check.settings import CheckPlan, Tolerance

COMPARED_SETTINGS = (
    "trials",
    "directions",
    "sampler",
    "sampler_kwargs",
    "pruner",
    "pruner_kwargs",
    "seed",
    "n_jobs",
)
"""Settings that change the result by design: a baseline made with others is refused."""


def _setting(plan: CheckPlan, name: str) -> Any:
    if name == "seed":
        return plan.seed
    value = getattr(plan.study, name)
    return (
        list(value)
        if isinstance(value, tuple)
        else dict(value)
        if isinstance(value, Mapping)
        else value
    )


def settings_mismatches(
    baseline: CheckPlan, now: CheckPlan, before: str = "in the baseline", after: str = "now"
) -> list[str]:
    """Human lines naming each setting that differs, e.g. "trials: 20 in the baseline, 30 now"."""
    return [
        f"{name}: {_setting(baseline, name)!r} {before}, {_setting(now, name)!r} {after}"
        for name in COMPARED_SETTINGS
        if _setting(baseline, name) != _setting(now, name)
    ]


@dataclass(frozen=True)
class BaselineCheck:
    """This run's replicates against the baseline's reference run."""

    path: str
    divergence: Divergence | None
    best_value_before: float | None
    best_value_now: float | None
    best_params_before: Mapping[str, Any] | None
    best_params_now: Mapping[str, Any] | None
    settings_changed: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineCheck:
        from repro_check.records import decode_float, decode_params

        def value(v: Any) -> float | None:
            return None if v is None else decode_float(v)

        def params(p: Any) -> Mapping[str, Any] | None:
            return None if p is None else decode_params(p)

        raw = data.get("divergence")
        divergence = None
        if raw is not None:
            divergence = Divergence(
                int(raw["trial"]),
                str(raw["field"]),
                tuple(int(r) for r in raw["runs"]),
                value(raw.get("max_abs_diff")),
                value(raw.get("max_rel_diff")),
                str(raw.get("detail", "")),
            )
        return cls(
            str(data["path"]),
            divergence,
            value(data.get("best_value_before")),
            value(data.get("best_value_now")),
            params(data.get("best_params_before")),
            params(data.get("best_params_now")),
            tuple(str(s) for s in data.get("settings_changed", [])),
        )

    @property
    def matches(self) -> bool:
        return self.divergence is None

    def to_dict(self) -> dict[str, Any]:
        from repro_check.report import divergence_dict

        def value(v: float | None) -> float | str | None:
            return None if v is None else encode_float(v)

        def params(p: Mapping[str, Any] | None) -> dict[str, Any] | None:
            return None if p is None else encode_params(p)

        return {
            "path": self.path,
            "matches": self.matches,
            "divergence": divergence_dict(self.divergence),
            "best_value_before": value(self.best_value_before),
            "best_value_now": value(self.best_value_now),
            "best_params_before": params(self.best_params_before),
            "best_params_now": params(self.best_params_now),
            "settings_changed": list(self.settings_changed),
        }

    def summary(self) -> str:
        if self.matches:
            return f"matches baseline {self.path}"
        d = self.divergence
        assert d is not None
        return f"differs from baseline {self.path}: trial {d.trial}, {d.field}: {d.detail}"


def reference(runs: Sequence[RunRecord]) -> RunRecord:
    return next((run for run in runs if run.finished), runs[0])


def finished_reference(runs: Sequence[RunRecord], what: str) -> RunRecord:
    """The reference run of a saved report, which must have finished: comparing with a run
    that stopped early would only compare its first trials (and pass)."""
    for run in runs:
        if run.finished:
            return run
    from repro_check.errors import ConfigError

    raise ConfigError(f"{what} has no finished run to compare with")


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
