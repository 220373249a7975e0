"""GPU placement, CPU-simulated: replicates per GPU-hour with 1, 2 and 4 (fake) GPUs.

    python benchmarks/bench_gpus.py [--runs 8] [--trials 20] [--json OUT]

There is no GPU on the development machine, so the device layer is faked with
``REPRO_CHECK_FAKE_GPUS`` (the test suite's hook) and the objective waits ~100 ms a trial
instead of computing (``gpu_objective.py``): the schedule is what is measured. For each GPU
count it runs ``repro-check run --device cuda --runs R`` (one replicate per GPU at a time,
``--workers`` defaulting to the GPU count), and prints the wall time, replicates per hour, the
speed-up over one GPU and how busy the GPUs were (replicate time x runs / (wall x GPUs)). On a
machine with GPUs, drop the fake and point ``--target`` at a real objective.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fake(count: int) -> str:
    return json.dumps(
        [
            {
                "index": i,
                "name": "NVIDIA H100 (simulated)",
                "uuid": f"GPU-00000000-0000-0000-0000-{i:012d}",
                "driver": "0",
                "compute_capability": "9.0",
            }
            for i in range(count)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--target", default="gpu_objective.py:objective")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    replicate_s = args.trials * 0.1
    rows = []
    for count in (1, 2, 4):
        env = {**os.environ, "REPRO_CHECK_FAKE_GPUS": fake(count), "NO_COLOR": "1"}
        cmd = [
            sys.executable,
            "-m",
            "repro_check",
            "run",
            args.target,
            "--device",
            "cuda",
            "--runs",
            str(args.runs),
            "--trials",
            str(args.trials),
            "-q",
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{count} GPU(s): exit {proc.returncode}: {proc.stderr.strip()}")
        rows.append(
            {
                "gpus": count,
                "wall_s": round(wall, 2),
                "replicates_per_hour": round(args.runs / wall * 3600),
                "replicates_per_gpu_hour": round(args.runs / wall * 3600 / count),
                "busy": round(replicate_s * args.runs / (wall * count), 2),
            }
        )
    base = rows[0]["wall_s"]
    print(f"{args.runs} replicates x {args.trials} trials of ~100 ms (simulated GPU time)")
    print(f"{'GPUs':>4} {'wall s':>8} {'repl/h':>8} {'repl/GPU-h':>11} {'speed-up':>9} {'busy':>6}")
    for row in rows:
        speedup = base / row["wall_s"]
        row["speedup"] = round(speedup, 2)
        print(
            f"{row['gpus']:>4} {row['wall_s']:>8} {row['replicates_per_hour']:>8} "
            f"{row['replicates_per_gpu_hour']:>11} {speedup:>9.2f} {row['busy']:>6}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
