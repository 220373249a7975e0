"""Benchmark the scale features: fail-fast time to verdict, and storage overhead per trial.

1. ``--fail-fast`` on a study that parts at trial 0 (benchmarks/noisy_objective.py, ~50 ms a
   trial): wall time to the verdict as a fraction of the full check (goal: a small fraction).
2. Storage: the same check (bundled quadratic objective, T trials, 2 runs, 1 worker) in memory,
   in SQLite and, when REPRO_CHECK_TEST_POSTGRES_URL is set, in PostgreSQL; the extra wall time
   divided by the trials run is the per-trial cost of persisting through Optuna's storage.

    python benchmarks/bench_scale.py [--trials 200] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "repro_check", "run", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=HERE,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"repro-check failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def median_of(repeat: int, args_for: object) -> float:
    return statistics.median(timed(args_for()) for _ in range(repeat))  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    results: dict[str, float] = {}

    noisy = ["noisy_objective.py:objective", "--trials", "40", "--runs", "2", "--workers", "2"]
    results["full_s"] = statistics.median(timed(noisy) for _ in range(args.repeat))
    results["fail_fast_s"] = statistics.median(
        timed([*noisy, "--fail-fast"]) for _ in range(args.repeat)
    )
    results["fail_fast_fraction"] = results["fail_fast_s"] / results["full_s"]

    base = [
        "repro_check.examples.quadratic:objective",
        "--trials",
        str(args.trials),
        "--runs",
        "2",
        "--workers",
        "1",
    ]
    trials_run = 2 * args.trials
    results["memory_s"] = statistics.median(timed(base) for _ in range(args.repeat))
    storages = {}
    with tempfile.TemporaryDirectory() as folder:
        storages["sqlite"] = lambda i: f"sqlite:///{folder}/bench-{i}.db"
        pg = os.environ.get("REPRO_CHECK_TEST_POSTGRES_URL")
        if pg:
            storages["postgres"] = lambda i: pg
        for kind, url_for in storages.items():
            times = []
            for i in range(args.repeat):
                name = f"bench-{kind}-{time.time_ns()}"
                times.append(timed([*base, "--storage", url_for(i), "--name", name]))
            results[f"{kind}_s"] = statistics.median(times)
            extra = results[f"{kind}_s"] - results["memory_s"]
            results[f"{kind}_ms_per_trial"] = 1000 * extra / trials_run

    print("fail-fast on a study that parts at trial 0 (2 runs x 40 trials of ~50 ms):")
    print(
        f"  full check {results['full_s']:.2f} s, --fail-fast {results['fail_fast_s']:.2f} s "
        f"= {results['fail_fast_fraction']:.2f} of the full time"
    )
    print(
        f"storage overhead ({trials_run} trials, 1 worker): in memory {results['memory_s']:.2f} s"
    )
    for kind in storages:
        print(
            f"  {kind:<9} {results[kind + '_s']:.2f} s  "
            f"= +{results[kind + '_ms_per_trial']:.2f} ms per trial"
        )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
