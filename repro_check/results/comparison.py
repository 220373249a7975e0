"""Pure comparison of replicate runs: first divergence, distinct histories, spread statistics.

No I/O and no optuna here, so every rule is unit-testable. Two trials are told equal field by
field by ``trial_fields.py``, whose docstring states the rules (what is compared, exactness,
NaN, where a tolerance applies); this module applies them to whole runs.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from repro_check.json_values import decode_float, encode_float
from repro_check.plan.settings import Tolerance
from repro_check.results.records import RunRecord
from repro_check.results.trial_fields import (
    FIELDS,
    describe,
    diff_magnitude,
    field_equal,
    field_pairs,
    floats_equal,
    is_number,
    param_equal,
)
from repro_check.results.trial_record import TrialRecord


@dataclass(frozen=True)
class Divergence:
    """Where the runs first part."""

    trial: int
    """The lowest trial number at which any run differs."""
    field: str
    """One of ``FIELDS`` (state, params, ..., system_attrs) or trial_count; a script's
    ``studies`` (``checks.baseline``)."""
    runs: tuple[int, ...]
    """The reference run first, then the runs that differ from it there."""
    max_abs_diff: float | None
    max_rel_diff: float | None
    detail: str
    """One human line, e.g. "param x = 0.12 vs 0.15 (run 0 vs run 2)"."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "field": self.field,
            "runs": list(self.runs),
            "max_abs_diff": _num(self.max_abs_diff),
            "max_rel_diff": _num(self.max_rel_diff),
            "detail": self.detail,
        }

    @staticmethod
    def to_optional_dict(divergence: Divergence | None) -> dict[str, Any] | None:
        """``to_dict``, or None (JSON null) when the runs do not part."""
        return None if divergence is None else divergence.to_dict()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Divergence:
        def value(v: Any) -> float | None:
            return None if v is None else decode_float(v)

        return cls(
            int(raw["trial"]),
            str(raw["field"]),
            tuple(int(r) for r in raw["runs"]),
            value(raw.get("max_abs_diff")),
            value(raw.get("max_rel_diff")),
            str(raw.get("detail", "")),
        )


def _num(value: float | None) -> float | str | None:
    return None if value is None else encode_float(value)


def _by_number(run: RunRecord) -> dict[int, TrialRecord]:
    return {t.number: t for t in run.trials}


_NUMBER = operator.attrgetter("number")
_DIGEST = operator.attrgetter("digest")
_SHAPE = operator.attrgetter("shape_digest")
_FLOAT_BYTES = operator.attrgetter("float_bytes")


class _Columns:
    """A run's fingerprints side by side, for comparing whole runs without per-trial Python.

    Cached on the (immutable) run, so a comparison's several passes build it once.
    """

    def __init__(self, run: RunRecord) -> None:
        self._trials = trials = run.trials
        # map/attrgetter keep these passes in C: ~40 ns a trial, not a Python loop
        self.aligned = tuple(map(_NUMBER, trials)) == tuple(range(len(trials)))
        self.keys = tuple(map(_DIGEST, trials))
        self._shapes: tuple[Any, ...] | None = None
        self._flat: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def shapes(self) -> tuple[Any, ...]:
        """Only tolerance checks need the float-free part and the floats apart."""
        if self._shapes is None:
            self._shapes = tuple(map(_SHAPE, self._trials))
        return self._shapes

    def _floats(self) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np  # only tolerance checks need it; keeps the CLI's start-up light

        if self._flat is None:
            chunks = tuple(map(_FLOAT_BYTES, self._trials))
            counts = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks)) // 8
            starts = np.concatenate(([0], np.cumsum(counts)))
            flat = np.frombuffer(b"".join(chunks), dtype=np.float64)
            self._flat = (starts, flat)
        return self._flat

    @property
    def starts(self) -> np.ndarray:
        return self._floats()[0]

    @property
    def flat(self) -> np.ndarray:
        return self._floats()[1]

    @staticmethod
    def of(run: RunRecord) -> _Columns:
        cached = run.__dict__.get("_columns")
        if cached is None:
            cached = _Columns(run)
            object.__setattr__(run, "_columns", cached)
        return cached


def _first_mismatch(a: Sequence[Any], b: Sequence[Any], length: int) -> int | None:
    """First index < ``length`` where the sequences differ (C-speed when they do not)."""
    if a[:length] == b[:length]:
        return None
    return next(i for i in range(length) if a[i] != b[i])


def _floats_close(a: np.ndarray, b: np.ndarray, tol: Tolerance) -> np.ndarray:
    """Elementwise ``floats_equal`` under a tolerance (same rule as ``math.isclose``)."""
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - b)
        if tol.rtol:
            bound = np.maximum(tol.rtol * np.maximum(np.abs(a), np.abs(b)), tol.atol)
        else:
            bound = tol.atol
        # a finite difference means both are finite: an infinity is close only to itself
        # (math.isclose), however large rtol * scale is
        close = (diff <= bound) & np.isfinite(diff)
    result: np.ndarray = close | (a == b) | (np.isnan(a) & np.isnan(b))
    return result


def _first_difference(ref: _Columns, other: _Columns, tol: Tolerance) -> int | None:
    """First trial position where ``other`` may differ from ``ref`` on the trials both have.
    Never later than the true first divergence (it may be earlier only if in doubt)."""
    length = min(len(ref.keys), len(other.keys))
    if tol.exact:
        return _first_mismatch(ref.keys, other.keys, length)
    shape_at = _first_mismatch(ref.shapes, other.shapes, length)
    upto = length if shape_at is None else shape_at
    end = int(ref.starts[upto])
    close = _floats_close(ref.flat[:end], other.flat[:end], tol)
    if close.all():
        return shape_at
    bad = int(close.argmin())  # first False
    return int(ref.starts.searchsorted(bad, side="right")) - 1


def _scan_start(runs: Sequence[RunRecord], reference: int, tol: Tolerance) -> int | None:
    """The lowest trial number worth examining one trial at a time, or None when every run
    agrees with the reference on every common trial and finished runs have equal lengths.
    Returns 0 (examine everything) when trial numbers are not simply 0, 1, 2, ..."""
    columns = [_Columns.of(run) for run in runs]
    if not all(c.aligned for c in columns):
        return 0
    ref = columns[reference]
    starts = [
        at
        for i, other in enumerate(columns)
        if i != reference and (at := _first_difference(ref, other, tol)) is not None
    ]
    lengths = {len(run.trials) for run in runs if run.finished}
    if len(lengths) > 1:
        starts.append(min(lengths))
    if any(len(c.keys) > len(ref.keys) for c in columns):
        # trials the reference has not reached are compared among the other runs, one by one
        starts.append(len(ref.keys))
    return min(starts) if starts else None


def first_divergence(
    runs: Sequence[RunRecord], tol: Tolerance, names: Sequence[str] | None = None
) -> Divergence | None:
    """The lowest trial where any run differs from the reference run (the first finished one).

    Unfinished runs are compared on the trials they have; only finished runs can disagree on
    the trial count (a crashed run is already not reproducible, and says so in its status).
    ``names`` labels the runs in the detail line (default "run <index>").
    """
    if len(runs) < 2:
        return None
    finished = [i for i, run in enumerate(runs) if run.finished]
    reference = finished[0] if finished else 0
    start = _scan_start(runs, reference, tol)
    if start is None:
        return None
    scan = _Scan(runs, tol, reference, finished, names)
    numbers = sorted(set().union(*scan.tables))
    for number in numbers[bisect.bisect_left(numbers, start) :]:
        found = scan.field_divergence(number) or scan.count_divergence(number)
        if found is not None:
            return found
    return None


class _Scan:
    """``first_divergence``'s walk, one trial number at a time: the runs' trials by number,
    the reference run and the labels the detail line names the runs by."""

    def __init__(
        self,
        runs: Sequence[RunRecord],
        tol: Tolerance,
        reference: int,
        finished: list[int],
        names: Sequence[str] | None,
    ) -> None:
        self.runs, self.tol, self.reference, self.finished = runs, tol, reference, finished
        self.label = list(names) if names is not None else [f"run {run.index}" for run in runs]
        self.tables = [_by_number(run) for run in runs]

    def field_divergence(self, number: int) -> Divergence | None:
        """The first field (in ``FIELDS`` order) in which a run holding trial ``number``
        differs from the reference (or, where the reference lacks it, the first holder)."""
        tables = self.tables
        holders = [i for i, table in enumerate(tables) if number in table]
        ref = self.reference if number in tables[self.reference] else holders[0]
        base = tables[ref][number]
        for name in FIELDS:
            differing = [
                i
                for i in holders
                if i != ref and not field_equal(name, base, tables[i][number], self.tol)
            ]
            if differing:
                pairs = [p for i in differing for p in field_pairs(name, base, tables[i][number])]
                max_abs, max_rel = diff_magnitude(pairs)
                first = tables[differing[0]][number]
                shown = describe(name, base, first, self.tol)
                detail = f"{shown} ({self.label[ref]} vs {self.label[differing[0]]})"
                involved = (self.runs[ref].index, *(self.runs[i].index for i in differing))
                return Divergence(number, name, involved, max_abs, max_rel, detail)
        return None

    def count_divergence(self, number: int) -> Divergence | None:
        """Finished runs disagree on having trial ``number``: they ran different counts."""
        missing = [i for i in self.finished if number not in self.tables[i]]
        if not missing:
            return None
        present = [i for i in self.finished if number in self.tables[i]]
        counts = ", ".join(f"{self.label[i]}: {len(self.runs[i].trials)}" for i in self.finished)
        return Divergence(
            number,
            "trial_count",
            tuple(self.runs[i].index for i in _reference_first(self.reference, present, missing)),
            None,
            None,
            f"different numbers of trials ({counts})",
        )


def _reference_first(reference: int, present: list[int], missing: list[int]) -> list[int]:
    """The reference run first, then the runs that disagree with it on having the trial."""
    if reference in missing:
        return [reference, *present]
    return [reference, *missing]


def histories_equal(a: RunRecord, b: RunRecord, tol: Tolerance) -> bool:
    if len(a.trials) != len(b.trials):
        return False
    ca, cb = _Columns.of(a), _Columns.of(b)
    if ca.aligned and cb.aligned:
        if tol.exact:
            return ca.keys == cb.keys
        return ca.shapes == cb.shapes and bool(_floats_close(ca.flat, cb.flat, tol).all())
    table = _by_number(b)
    return all(
        t.number in table and all(field_equal(n, t, table[t.number], tol) for n in FIELDS)
        for t in a.trials
    )


def distinct_histories(runs: Sequence[RunRecord], tol: Tolerance) -> int:
    """How many different trial histories the runs produced (greedy grouping under ``tol``)."""
    if tol.exact and all(_Columns.of(r).aligned for r in runs):
        # exact equality is transitive: compare fingerprints with one representative per group
        # (tuple == runs in C and stops at the first difference)
        groups: list[tuple[Any, ...]] = []
        for run in runs:
            keys = _Columns.of(run).keys
            if not any(keys == seen for seen in groups):
                groups.append(keys)
        return len(groups)
    representatives: list[RunRecord] = []
    for run in runs:
        if not any(histories_equal(rep, run, tol) for rep in representatives):
            representatives.append(run)
    return len(representatives)


@dataclass(frozen=True)
class Stats:
    """Spread of a number across runs. ``std`` is the sample standard deviation (n - 1)."""

    mean: float
    std: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats | None:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return None
        n = len(finite)
        if any(math.isinf(v) for v in finite):  # fsum refuses inf + -inf; spread is undefined
            infinite = {v for v in finite if math.isinf(v)}
            mean = infinite.pop() if len(infinite) == 1 else math.nan
            return cls(mean, math.nan, min(finite), max(finite), n)
        if min(finite) == max(finite):  # no spread: say exactly 0, not a rounding residue
            return cls(finite[0], 0.0, finite[0], finite[0], n)
        mean = math.fsum(finite) / n
        var = math.fsum((v - mean) ** 2 for v in finite) / (n - 1) if n > 1 else 0.0
        return cls(
            mean, math.sqrt(var) if math.isfinite(var) else math.nan, min(finite), max(finite), n
        )

    @property
    def range(self) -> float:
        return self.max - self.min

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _num(self.mean),
            "std": _num(self.std),
            "min": _num(self.min),
            "max": _num(self.max),
            "n": self.n,
        }

    @staticmethod
    def to_optional_dict(stats: Stats | None) -> dict[str, Any] | None:
        """``to_dict``, or None (JSON null) when there was no finite value."""
        return None if stats is None else stats.to_dict()


@dataclass(frozen=True)
class ParamSpread:
    """Spread of one best param across runs: numeric stats, or counts of categorical choices."""

    name: str
    stats: Stats | None = None
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def varies(self) -> bool:
        if self.stats is not None:
            return self.stats.min != self.stats.max
        return len(self.counts) > 1

    def to_dict(self) -> dict[str, Any]:
        if self.stats is not None:
            return {"type": "numeric", **self.stats.to_dict(), "range": _num(self.stats.range)}
        return {"type": "categorical", "counts": dict(self.counts)}


def param_spreads(runs: Sequence[RunRecord]) -> dict[str, ParamSpread]:
    collected: dict[str, list[Any]] = {}
    for run in runs:
        for key, value in (run.best_params or {}).items():
            collected.setdefault(key, []).append(value)
    spreads = {}
    for key, values in sorted(collected.items()):
        if all(is_number(v) for v in values):
            spreads[key] = ParamSpread(key, stats=Stats.of([float(v) for v in values]))
        else:
            spreads[key] = ParamSpread(key, counts=dict(Counter(repr(v) for v in values)))
    return spreads


def reference_run(runs: Sequence[RunRecord]) -> RunRecord | None:
    """The run the best table marks others against: the first run with trials."""
    return next((run for run in runs if run.trials), None)


def differing_best_cells(runs: Sequence[RunRecord], tol: Tolerance) -> dict[int, set[str]]:
    """Per run index, which best-table cells ("value" or a param name) differ from the
    reference run's (the first run with trials, never marked itself). A run with no trials has
    nothing to compare and is never marked."""
    ref = reference_run(runs)
    if ref is None:
        return {}
    marks: dict[int, set[str]] = {}
    for run in runs:
        if not run.trials:
            continue
        cells: set[str] = set()
        a, b = ref.best_value, run.best_value
        if (a is None) != (b is None) or (
            a is not None and b is not None and not floats_equal(a, b, tol)
        ):
            cells.add("value")
        pa, pb = ref.best_params or {}, run.best_params or {}
        for key in pa.keys() | pb.keys():
            if key not in pa or key not in pb or not param_equal(pa[key], pb[key]):
                cells.add(key)
        if run is not ref and cells:
            marks[run.index] = cells
    return marks


@dataclass(frozen=True)
class Comparison:
    """Everything the verdict and the renderers need from a set of runs."""

    divergence: Divergence | None
    distinct_histories: int
    best_value: Stats | None
    best_params: Mapping[str, ParamSpread]
    differing_cells: Mapping[int, set[str]]

    def summary_dict(self) -> dict[str, Any]:
        """The report's ``summary`` (the divergence is a section of its own)."""
        return {
            "best_value": Stats.to_optional_dict(self.best_value),
            "best_params": {k: v.to_dict() for k, v in self.best_params.items()},
            "distinct_histories": self.distinct_histories,
        }


def counted_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs whose histories are counted: the finished ones, or, when none finished, every
    run with trials. A run with no trials (never started, stopped at once) has no history and
    is never counted, whatever stopped it (--fail-fast, Ctrl-C, a crash)."""
    started = [run for run in runs if run.trials]
    return [run for run in started if run.finished] or started


def history_count(runs: Sequence[RunRecord], tol: Tolerance) -> int:
    """How many different histories the counted runs show. Finished runs compare whole; when
    none finished, a stopped run joins a history it agrees with on the trials it has."""
    counted = counted_runs(runs)
    if all(run.finished for run in counted):
        return distinct_histories(counted, tol)
    representatives: list[RunRecord] = []
    for run in counted:
        if not any(first_divergence([rep, run], tol) is None for rep in representatives):
            representatives.append(run)
    return len(representatives)


def compare_runs(runs: Sequence[RunRecord], tol: Tolerance) -> Comparison:
    finished = [run for run in runs if run.finished] or list(runs)
    values = [run.best_value for run in finished if run.best_value is not None]
    divergence = first_divergence(runs, tol)
    # no divergence: every run with trials agrees with the reference on the trials it has,
    # and every finished run has the reference's trial count
    if divergence is None:
        distinct = 1 if any(run.trials for run in runs) else 0
    else:
        distinct = history_count(runs, tol)
    return Comparison(
        divergence=divergence,
        distinct_histories=distinct,
        best_value=Stats.of(values),
        best_params=param_spreads(finished),
        differing_cells=differing_best_cells(runs, tol),
    )


class DivergenceWatch:
    """Spots a divergence as trials stream in: each new trial is compared only with the same
    trial number from the other streams, so watching costs O(streams) per trial, not a full
    re-comparison. A divergence seen here is certain: both runs reported that trial."""

    def __init__(self, tol: Tolerance) -> None:
        self.tol = tol
        self._seen: dict[int, dict[int, TrialRecord]] = {}

    def add(self, stream: int, trial: TrialRecord) -> bool:
        """Record ``trial`` from ``stream``; True if it differs from another stream's."""
        others = self._seen.setdefault(trial.number, {})
        diverged = any(
            not all(field_equal(name, other, trial, self.tol) for name in FIELDS)
            for key, other in others.items()
            if key != stream
        )
        others[stream] = trial
        return diverged
