"""Script mode, live: how soon the parent hears of each trial, and what --fail-fast saves.

Issue 21, item 2. The script is ``tests/fixtures/scripts/live_trials.py``: one study 'a' of
``--trials`` trials (default 30), each sleeping ``--pause`` s (default 2: a 60 s script, as a
short training script), run twice at once (``--runs 2 --workers 2``). Measured:

1. Live counts. ``run_check`` runs in this process with a progress callback; the script marks
   the wall-clock time each trial's objective returns (``LIVE_MARKS``). For each trial number
   k, the latency is the time at which both replicates' progress had counted k+1 trials less
   the later of the two trials' ends (an upper bound on each replicate's own latency; it
   includes Optuna's tell, the callback, the pipe and the parent's checks). Limit: the
   largest latency under 1 s. The progress total (the script's n_trials, from its
   ``optimize`` call) is printed beside it: an ETA needs it.
2. ``--fail-fast`` on runs that part at trial 2 (``LIVE_PART=2``: from trial 2 on each run
   returns its own value) against the same script that does not part, both through the command
   line (a fresh ``python -m repro_check`` each, wall clock). Limit: the fail-fast check takes
   under a third of the full one's time.

Run from the repository root (the defaults take about 2.5 minutes)::

    .venv/bin/python benchmarks/bench_script_live.py
    .venv/bin/python benchmarks/bench_script_live.py --pause 0.5   # a 15 s script

Exit status: 0 when both limits are met, 1 when one is missed, 2 when a check did not say what
it should (the full run not REPRODUCIBLE, the parting one not NOT REPRODUCIBLE).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "fixtures" / "scripts" / "live_trials.py"


def live_env(trials: int, pause: float, **extra: str) -> dict[str, str]:
    env = {"LIVE_TRIALS": str(trials), "LIVE_PAUSE": str(pause)}
    env.update({f"LIVE_{k.upper()}": v for k, v in extra.items()})
    return env


def latencies(trials: int, pause: float) -> tuple[list[float], set[int], str]:
    """(per-trial latency, progress totals seen while running, verdict) of one in-process run."""
    from repro_check.checks.run import run_check
    from repro_check.plan.config import build_plan

    marks = Path(tempfile.mkdtemp()) / "marks.txt"
    heard: list[tuple[float, int, int, int]] = []  # (time, job, done, total)

    def on_progress(event: Any) -> None:
        if event.status is None and not event.queued:
            heard.append((time.time(), event.job, event.done, event.total))

    env = live_env(trials, pause, marks=str(marks))
    os.environ.update(env)
    try:
        plan = build_plan(str(SCRIPT), {"runs": 2, "workers": 2}, None)
        report = run_check(plan, on_progress)
    finally:
        for name in env:
            os.environ.pop(name, None)
    ends: dict[int, float] = {}
    for line in marks.read_text().splitlines():
        what, _pid, number, when = line.split()
        if what == "end":
            ends[int(number)] = max(ends.get(int(number), 0.0), float(when))
    out = []
    for k in sorted(ends):
        counted = {}
        for when, job, done, _total in heard:
            if done >= k + 1 and job not in counted:
                counted[job] = when
        if len(counted) == 2:
            out.append(max(counted.values()) - ends[k])
    totals = {total for _when, _job, _done, total in heard}
    return out, totals, str(report.verdict)


def timed_cli(trials: int, pause: float, *flags: str, **extra: str) -> tuple[float, int, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **live_env(trials, pause, **extra)}
    argv = [sys.executable, "-m", "repro_check", "run", str(SCRIPT), "--runs", "2", *flags]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    took = time.perf_counter() - start
    first = proc.stdout.splitlines()[1] if len(proc.stdout.splitlines()) > 1 else proc.stdout
    return took, proc.returncode, first.strip("│ ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--pause", type=float, default=2.0)
    args = parser.parse_args()
    print(f"script: {args.trials} trials x {args.pause:g} s, 2 runs at once")

    lat, totals, verdict = latencies(args.trials, args.pause)
    worst = max(lat) if lat else float("inf")
    print(
        f"1. live counts: {len(lat)} trials heard, latency median "
        f"{sorted(lat)[len(lat) // 2] * 1000:.0f} ms, max {worst * 1000:.0f} ms "
        f"(limit 1000 ms); progress totals seen {sorted(totals)}; verdict {verdict}"
    )
    full, full_code, full_says = timed_cli(args.trials, args.pause)
    fast, fast_code, fast_says = timed_cli(args.trials, args.pause, "--fail-fast", part="2")
    print(f"2. full run: {full:.1f} s, exit {full_code}: {full_says}")
    print(f"   --fail-fast, parting at trial 2: {fast:.1f} s, exit {fast_code}: {fast_says}")
    print(f"   ratio {fast / full:.3f} (limit 0.333)")
    if full_code != 0 or fast_code != 1 or verdict != "reproducible":
        return 2
    return 0 if worst < 1.0 and fast < full / 3 else 1


if __name__ == "__main__":
    sys.exit(main())
