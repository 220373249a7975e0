"""Benchmark reading a large saved report: ``repro-check report FILE`` and ``diff FILE FILE``.

Goal (issue 20, item 3): a 197 MB-class report (2 runs x 450,000 trials) re-rendered by
``report`` in <= 5 s and <= 1 GB peak RSS, and ``diff`` of it against itself in <= 10 s.

The report is written once (cached by size in ``--dir``) the way ``run --json`` writes one:
``RunReport.to_dict`` of a tiny real report, its trials replaced by N generated ones in
``TrialRecord.to_dict``'s exact shape (one float param, one value, a duration), then
``render.json_report.dumps`` (indent 2). Each command runs as a subprocess; its wall time and
peak RSS come from ``os.wait4`` (that child's own rusage, not the maximum over every child).

    python benchmarks/bench_saved_reports.py                    # 2 x 450,000 trials (~197 MB)
    python benchmarks/bench_saved_reports.py --small            # 2 x 45,000 trials (~20 MB)
    python benchmarks/bench_saved_reports.py --trials 100000 --repeat 3 --json out.json
    python benchmarks/bench_saved_reports.py --strict           # exit 1 when a goal is missed
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
from typing import Any

GOALS = {"report": (5.0, 1024.0), "diff": (10.0, None)}
"""Seconds and peak MiB (None: no memory goal) at the full size (2 x 450,000 trials)."""
FULL_TRIALS = 450_000
SMALL_TRIALS = 45_000


def _trial(number: int) -> dict[str, Any]:
    """One trial as ``TrialRecord.to_dict`` writes it (checked against it in ``write_report``)."""
    x = (number * 0.6180339887) % 1.0 * 10 - 5
    return {
        "number": number,
        "state": "COMPLETE",
        "params": {"x": x},
        "values": [(x - 1.0) ** 2 + number * 1e-6],
        "intermediate_values": {},
        "user_attrs": {},
        "error": None,
        "duration_s": 0.001,
    }


def write_report(path: Path, runs: int, trials: int) -> None:
    """A saved ``run`` report of ``runs`` identical replicates of ``trials`` trials each."""
    import dataclasses

    from repro_check.plan.settings import CheckPlan, StudySettings
    from repro_check.render.json_report import dumps
    from repro_check.results import report
    from repro_check.results.records import RunRecord
    from repro_check.results.trial_record import TrialRecord

    template = _trial(0)
    made = TrialRecord(
        number=0, state="COMPLETE", params=template["params"], values=tuple(template["values"])
    )
    shape = {**made.to_dict(), "duration_s": 0.001}
    assert shape == template, (shape, template)  # the generated trials are the writer's shape
    plan = CheckPlan(target="benchmarks/noisy_objective.py:objective", runs=runs)
    plan = dataclasses.replace(plan, study=StudySettings(trials=trials))
    few = [RunRecord(index=i, seed=0, status="ok", trials=(made,)) for i in range(runs)]
    data = report.build("run", plan, "cpu", few).to_dict()
    trial_dicts = [_trial(n) for n in range(trials)]
    best = min(trial_dicts, key=lambda t: t["values"][0])
    for run in data["runs"]:
        run["trials"] = trial_dicts
        run["best_value"] = best["values"][0]
        run["best_params"] = best["params"]
    path.write_text(dumps(data), encoding="utf-8")


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit code of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0,):
        print(f"  {' '.join(argv[-3:])}: exit {proc.returncode}: {err.strip()[-300:]}")
    return wall, usage.ru_maxrss / 1024, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=FULL_TRIALS)
    parser.add_argument("--small", action="store_true", help=f"{SMALL_TRIALS} trials a run")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path, help="write the measurements here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    trials = SMALL_TRIALS if args.small else args.trials
    path = args.dir / f"repro-check-bench-{args.runs}x{trials}.json"
    if not path.exists():
        start = time.perf_counter()
        write_report(path, args.runs, trials)
        print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    size_mb = path.stat().st_size / 1e6
    print(f"report: {args.runs} runs x {trials} trials, {size_mb:.0f} MB; {os.getloadavg()=}")
    tool = [sys.executable, "-m", "repro_check"]
    commands = {
        "report": [*tool, "report", str(path)],
        "diff": [*tool, "diff", str(path), str(path)],
    }
    results: dict[str, Any] = {"runs": args.runs, "trials": trials, "size_mb": round(size_mb, 1)}
    missed = False
    for name, argv in commands.items():
        measured = [timed(argv) for _ in range(args.repeat)]
        wall = statistics.median(m[0] for m in measured)
        rss = max(m[1] for m in measured)
        codes = sorted({m[2] for m in measured})
        results[name] = {"wall_s": round(wall, 2), "peak_rss_mib": round(rss), "exit": codes}
        seconds, mib = GOALS[name]
        goal = f"goal <= {seconds} s" + ("" if mib is None else f", <= {mib:.0f} MiB")
        if trials == FULL_TRIALS and args.runs == 2:
            missed |= wall > seconds or (mib is not None and rss > mib)
        else:
            goal += " (at 2 x 450,000)"
        print(f"{name:>6}: {wall:6.2f} s  peak RSS {rss:6.0f} MiB  exit {codes}   [{goal}]")
        missed |= codes != [0]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
