"""Benchmark the comparison engine: R runs × T trials compared in one call.

Goal (issue 5): 100 runs × 10,000 trials compared in under 1 s, memory under 1 GiB.
Records are built first (as a loaded report or a finished check would hold them); the timed part
is ``compare_runs`` — divergence, distinct histories, statistics — in three cases:
identical runs (everything must be scanned), runs that part at the very last trial, and a
tolerance check where every value differs by less than the tolerance.

    python benchmarks/bench_compare.py [--runs 100] [--trials 10000] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import sys
import time
import tracemalloc

from repro_check.plan.settings import Tolerance
from repro_check.results.comparison import compare_runs
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord


def make_trials(trials: int, jitter: float = 0.0, last_value: float | None = None) -> tuple:
    made = []
    for n in range(trials):
        x = (n * 0.6180339887) % 1.0 * 10 - 5
        value = (x - 1.0) ** 2 + n * 1e-6 + jitter
        if last_value is not None and n == trials - 1:
            value = last_value
        made.append(
            TrialRecord(
                number=n,
                state="COMPLETE",
                params={"x": x, "lr": 10 ** -(n % 4), "layers": n % 5, "act": "relu"},
                values=(value,),
                intermediate_values={0: value + 1.0, 1: value + 0.5, 2: value},
                duration_s=0.001,
            )
        )
    return tuple(made)


def build(runs: int, trials: int, case: str) -> list[RunRecord]:
    out = []
    for i in range(runs):
        if case == "identical":  # separate objects, as separate workers would produce
            made = make_trials(trials)
        elif case == "last_trial":
            made = make_trials(trials) if i % 2 == 0 else make_trials(trials, last_value=-1.0)
        else:  # "within_tolerance": every float differs a little
            made = make_trials(trials, jitter=1e-12 * (i + 1))
        out.append(RunRecord(index=i, seed=0, status="ok", trials=made))
    return out


def time_case(runs: list[RunRecord], tol: Tolerance, repeat: int) -> tuple[float, float, object]:
    times = []
    result = None
    for _ in range(repeat):
        # fresh objects each repeat, so nothing cached from the last repeat helps
        fresh = [dataclasses.replace(run) for run in runs]
        start = time.perf_counter()
        result = compare_runs(fresh, tol)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    compare_runs([dataclasses.replace(run) for run in runs], tol)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    rows = []
    cases = [
        ("identical", Tolerance()),
        ("last_trial", Tolerance()),
        ("within_tolerance", Tolerance(atol=1e-9)),
    ]
    for case, tol in cases:
        start = time.perf_counter()
        runs = build(args.runs, args.trials, case)
        built = time.perf_counter() - start
        seconds, peak_mib, result = time_case(runs, tol, args.repeat)
        divergence = getattr(result, "divergence", None)
        rows.append(
            {
                "case": case,
                "build_s": round(built, 3),
                "compare_s": round(seconds, 4),
                "compare_peak_mib": round(peak_mib, 1),
                "divergence_trial": None if divergence is None else divergence.trial,
            }
        )
        del runs
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.runs} runs × {args.trials} trials  (goal: compare < 1 s, memory < 1 GiB)")
    for row in rows:
        ok = "ok" if row["compare_s"] < 1.0 else "SLOW"
        print(
            f"  {row['case']:<17} compare {row['compare_s']:>7.3f} s [{ok}]  "
            f"peak during compare {row['compare_peak_mib']:>7.1f} MiB  "
            f"(building the records: {row['build_s']:.2f} s)  "
            f"divergence at trial {row['divergence_trial']}"
        )
    print(f"  process max RSS (records + comparison): {rss_mib:.0f} MiB")
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump({"rows": rows, "max_rss_mib": round(rss_mib)}, handle, indent=2)
    sys.exit(0)


if __name__ == "__main__":
    main()
