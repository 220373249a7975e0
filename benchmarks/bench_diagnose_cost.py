"""What ``diagnose`` costs, in study-equivalents: trials evaluated / the study's length.

    python benchmarks/bench_diagnose_cost.py [--trials 20] [--target pkg.mod:attr] [--json OUT]

Runs ``repro-check diagnose TARGET --json`` and counts every trial every experiment evaluated:
each run counted once (an ablation's reference is the fully controlled run, reused: it appears
in several experiments but ran once), the process-state probe's second study counted on its
own. Goal (issue 12), on a deterministic objective: at most 4 study-equivalents (it was 12-14:
7-8 experiments x 2 replicates of the whole study), with every cause still found.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

GOAL = 4.0


def evaluated(diagnosis: dict[str, Any]) -> int:
    """Trials evaluated across the experiments, each run once: an experiment with a
    ``reference`` reuses that experiment's run 0 as its own run 0 (not run again)."""
    total = 0
    for experiment in diagnosis["experiments"]:
        runs = experiment["runs"]
        own = runs[1:] if experiment.get("reference") else runs
        total += sum(int(run["trials"]) for run in own)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--target", default="repro_check.examples.quadratic:objective")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "d.json"
        cmd = [
            sys.executable,
            "-m",
            "repro_check",
            "diagnose",
            args.target,
            "--trials",
            str(args.trials),
            "--json",
            str(out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"diagnose failed ({proc.returncode}): {proc.stderr.strip()}")
        diagnosis = json.loads(out.read_text())
    trials = evaluated(diagnosis)
    equivalents = trials / args.trials
    causes = [c["id"] for c in diagnosis["causes"]]
    result = {
        "target": args.target,
        "study_trials": args.trials,
        "trials_evaluated": trials,
        "study_equivalents": round(equivalents, 2),
        "goal": GOAL,
        "experiments": [e["id"] for e in diagnosis["experiments"]],
        "causes": causes,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if equivalents > GOAL:
        raise SystemExit(f"{equivalents:.2f} study-equivalents > goal {GOAL}")


if __name__ == "__main__":
    main()
