"""The baseline comparison as a value object: this run's replicates against a committed run
report (``checks.baseline`` makes it; the run report carries it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repro_check.errors import ConfigError
from repro_check.json_values import decode_float, decode_params, encode_float, encode_params
from repro_check.results.comparison import Divergence
from repro_check.results.records import RunRecord

if TYPE_CHECKING:
    from repro_check.results import saved


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
        def value(v: Any) -> float | None:
            return None if v is None else decode_float(v)

        def params(p: Any) -> Mapping[str, Any] | None:
            return None if p is None else decode_params(p)

        raw = data.get("divergence")
        divergence = None if raw is None else Divergence.from_dict(raw)
        return cls(
            str(data["path"]),
            divergence,
            value(data.get("best_value_before")),
            value(data.get("best_value_now")),
            params(data.get("best_params_before")),
            params(data.get("best_params_now")),
            tuple(str(s) for s in data.get("settings_changed", [])),
        )

    @classmethod
    def from_saved(cls, data: saved.Baseline) -> BaselineCheck:
        """From a saved report's baseline, decoded and checked (``results.saved``)."""
        import msgspec

        return cls.from_dict(msgspec.to_builtins(data))

    @property
    def matches(self) -> bool:
        return self.divergence is None

    def to_dict(self) -> dict[str, Any]:
        def value(v: float | None) -> float | str | None:
            return None if v is None else encode_float(v)

        def params(p: Mapping[str, Any] | None) -> dict[str, Any] | None:
            return None if p is None else encode_params(p)

        return {
            "path": self.path,
            "matches": self.matches,
            "divergence": Divergence.to_optional_dict(self.divergence),
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
    raise ConfigError(f"{what} has no finished run to compare with")
