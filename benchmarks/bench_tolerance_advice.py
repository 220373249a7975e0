"""Does ``diagnose``'s tolerance advice hold on the next runs? (issue 22, item 3)

    python benchmarks/bench_tolerance_advice.py [--target pkg.mod:attr] [--trials 20]
        [--checks 20] [--diagnoses 1] [--repo DIR] [--json OUT]

Runs ``repro-check diagnose TARGET --json`` once (or ``--diagnoses`` times), takes the command
its ``objective_noise`` fix says to paste (the last ``# repro-check run ...`` line: ``--atol``,
and ``--trials`` when it offers a shorter check), runs that command ``--checks`` times as a
user would (each a fresh 3-run ``repro-check run``) and counts the passes. Goal: at least 19 of
20 fresh checks pass. ``--repo DIR`` runs another copy of the package (say, an extracted older
commit) with this same interpreter; advice written with a literal ``...`` (before issue 22)
has it replaced by the target. Exits 1 when an advice misses the goal, 2 when diagnose gave no
command to paste. Not a test: it takes a few minutes and measures a rate.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL = 19 / 20


def _env(repo: Path | None) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    if repo is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    return env


def advice(target: str, trials: int, repo: Path | None) -> tuple[list[str] | None, str]:
    """The ``run`` arguments the noise cause's fix says to paste, and the fix itself."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "d.json"
        cmd = [sys.executable, "-m", "repro_check", "diagnose", target, "--trials", str(trials)]
        proc = subprocess.run(
            [*cmd, "--json", str(out)], capture_output=True, text=True, env=_env(repo), cwd=repo
        )
        if proc.returncode != 0 or not out.exists():
            raise SystemExit(f"diagnose failed ({proc.returncode}): {proc.stderr.strip()}")
        diagnosis = json.loads(out.read_text())
    fix = next((c["fix"] for c in diagnosis["causes"] if c["id"] == "objective_noise"), "")
    lines = [line.removeprefix("# ") for line in fix.splitlines()]
    pasted = [line for line in lines if line.startswith("repro-check run ")]
    if not pasted:
        return None, fix
    words = shlex.split(pasted[-1].replace(" ... ", f" {target} "), comments=True)
    if "--trials" not in words:  # before issue 22 a passed check's advice named no count
        words += ["--trials", str(trials)]
    return words[2:], fix


def check_once(arguments: list[str], repo: Path | None) -> tuple[int, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "repro_check", "run", *arguments, "-q"],
        capture_output=True,
        text=True,
        env=_env(repo),
        cwd=repo,
    )
    return proc.returncode, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", default="repro_check.examples.noisy:objective")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--diagnoses", type=int, default=1)
    parser.add_argument("--repo", type=Path, help="run this copy of the package instead")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    repo = args.repo.resolve() if args.repo else None
    results: list[dict[str, Any]] = []
    for attempt in range(args.diagnoses):
        arguments, fix = advice(args.target, args.trials, repo)
        if arguments is None:
            print(f"diagnosis {attempt}: no command to paste in the fix:\n{fix}", file=sys.stderr)
            results.append({"advice": None, "fix": fix})
            continue
        codes = []
        for _ in range(args.checks):
            code, seconds = check_once(arguments, repo)
            codes.append(code)
            print(f"  run {shlex.join(arguments)}: exit {code} ({seconds:.1f} s)", file=sys.stderr)
        passed = codes.count(0)
        results.append(
            {
                "advice": "repro-check run " + shlex.join(arguments),
                "passed": passed,
                "checks": len(codes),
                "exit_codes": codes,
                "holds": passed >= GOAL * len(codes),
            }
        )
    summary = {
        "target": args.target,
        "study_trials": args.trials,
        "repo": str(repo) if repo else None,
        "goal": f">= {GOAL * args.checks:g} of {args.checks} checks pass",
        "load_average": os.getloadavg()[0],
        "diagnoses": results,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    if any(r["advice"] is None for r in results):
        raise SystemExit(2)
    if not all(r["holds"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
