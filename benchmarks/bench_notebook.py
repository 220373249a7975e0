"""Notebook mode's speed: ``repro-check run tune.ipynb`` against running its cells by hand.

Issue 24. The by-hand baseline is what a user does without the tool: a fresh process per run
that executes the notebook's code cells top to bottom through IPython's own shell (``python -c``
reading the cells with nbformat and calling ``InteractiveShell.run_cell`` on each, as a fresh
kernel's "Restart & Run All" does, without the kernel's messaging), each timed alone.

Measured, each ``--repeat`` times (medians reported; the order of the blocks rotates between
repeats so that drift in machine speed favours none of them):

1. by hand: four fresh processes, one after another; the baseline for N runs is the sum of the
   first N of them.
2. ``repro-check run tune.ipynb --runs 3 --workers 1``, and its ratio to three by-hand runs.
3. ``repro-check run tune.ipynb --runs 4 --workers 2``, and its ratio to four by-hand runs
   (0.50 is the ideal on 2 cores).

The notebook (written to a temporary folder) is a seeded TPE study in four code cells (imports,
a ``parameters`` cell, the objective, the study) plus a Markdown cell; each trial burns a fixed,
calibrated amount of GIL-holding CPU work (``--work-ms``, default 20 ms), 100 trials by default,
so one run takes about 2.5-3 s, of which interpreter start-up, ``import optuna`` and IPython's
start are a small but honest part. Before timing, one untimed round checks that repro-check
says REPRODUCIBLE and that every by-hand run printed the same best value.

Run from the repository root (the defaults take about 2 minutes on 2 idle cores)::

    .venv/bin/python benchmarks/bench_notebook.py
    .venv/bin/python benchmarks/bench_notebook.py --repeat 5 --json out.json

Beside wall time, the CPU time of each command and its children (user + system, workers
included) is recorded: on a shared, loaded machine it is the steadier measure of the tool's own
work (``cpu_ratio_runs3``: repro-check's 3 runs against 3 by-hand runs).

Exit status: 0 when measured, 2 when a command failed or the runs disagree. Other work on the
machine makes every number noisy (the load average at start and end is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BY_HAND = """
import sys, nbformat
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for cell in nbformat.read(sys.argv[1], as_version=4).cells:
    if cell.cell_type == "code" and cell.source.strip():
        shell.run_cell(cell.source, store_history=True).raise_error()
"""
"""A fresh kernel's Restart & Run All, minus the messaging: every code cell through IPython."""


def _spin_for(work_ms: float) -> int:
    """Loop count of ``_spin`` that takes ``work_ms`` here (the fastest of 20 probes)."""
    probe = 200_000
    best = min(_timed(lambda: _spin(probe)) for _ in range(20))
    return max(1, int(probe * work_ms / 1000 / best))


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def write_notebook(folder: Path, spin: int, trials: int) -> Path:
    cells = [
        ("markdown", "# A seeded study, timed"),
        ("code", "import optuna\n\noptuna.logging.set_verbosity(optuna.logging.WARNING)"),
        ("code", f"n_trials = {trials}\nspin = {spin}"),
        (
            "code",
            "def objective(trial):\n"
            '    x = trial.suggest_float("x", -10, 10)\n'
            "    total = 0\n"
            "    for i in range(spin):\n"
            "        total = (total + i * i) % 1_000_003\n"
            "    return (x - 2) ** 2 + total * 0.0",
        ),
        (
            "code",
            "study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))\n"
            "study.optimize(objective, n_trials=n_trials)\n"
            'print("best", repr(study.best_value))',
        ),
    ]
    notebook = {
        "cells": [
            {
                "cell_type": kind,
                "metadata": {"tags": ["parameters"]} if i == 2 else {},
                "source": source,
                **({"outputs": [], "execution_count": None} if kind == "code" else {}),
            }
            for i, (kind, source) in enumerate(cells)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    path = folder / "tune.ipynb"
    path.write_text(json.dumps(notebook))
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_run(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall s, CPU s of the process and its children, the finished process)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, _children_cpu() - cpu, done


def by_hand(path: Path) -> tuple[float, float, str]:
    wall, cpu, done = _timed_run([sys.executable, "-c", BY_HAND, str(path)])
    if done.returncode != 0:
        sys.exit(f"by hand failed:\n{done.stderr}")
    best = next((line for line in done.stdout.splitlines() if line.startswith("best ")), "")
    return wall, cpu, best


def repro_check(
    path: Path, runs: int, workers: int, extra: list[str] | None = None
) -> tuple[float, float]:
    command = [sys.executable, "-m", "repro_check", "run", str(path), "--runs", str(runs)]
    wall, cpu, done = _timed_run([*command, "--workers", str(workers), "-q", *(extra or [])])
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr)
        sys.exit(2)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    spin = _spin_for(options.work_ms)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_notebook(Path(tmp), spin, options.trials)
        # untimed: both run the same study, and it is reproducible
        check = Path(tmp) / "check.json"
        repro_check(path, 4, 2, ["--json", str(check)])
        bests = {by_hand(path)[2] for _ in range(2)}
        if len(bests) != 1 or not next(iter(bests)):
            sys.exit(f"by-hand runs disagree: {bests}")
        hand: list[list[tuple[float, float, str]]] = []
        one: list[tuple[float, float]] = []
        two: list[tuple[float, float]] = []
        blocks: list[Callable[[], None]] = [
            lambda: hand.append([by_hand(path) for _ in range(4)]),
            lambda: one.append(repro_check(path, 3, 1)),
            lambda: two.append(repro_check(path, 4, 2)),
        ]
        for index in range(options.repeat):
            for block in blocks[index % 3 :] + blocks[: index % 3]:
                block()

    def total(runs: int, part: int) -> float:  # median over repeats of N by-hand runs' sum
        return statistics.median(sum(h[part] for h in rounds[:runs]) for rounds in hand)

    def median(measured: list[tuple[float, float]], part: int) -> float:
        return statistics.median(m[part] for m in measured)

    results: dict[str, Any] = {
        "by_hand_one_run_s": round(statistics.median(r[0] for h in hand for r in h), 3),
        "by_hand_3_runs_s": round(total(3, 0), 3),
        "by_hand_4_runs_s": round(total(4, 0), 3),
        "repro_check_runs3_workers1_s": round(median(one, 0), 3),
        "ratio_runs3_workers1": round(median(one, 0) / total(3, 0), 3),
        "repro_check_runs4_workers2_s": round(median(two, 0), 3),
        "ratio_runs4_workers2": round(median(two, 0) / total(4, 0), 3),
        "by_hand_3_runs_cpu_s": round(total(3, 1), 3),
        "repro_check_runs3_workers1_cpu_s": round(median(one, 1), 3),
        "cpu_ratio_runs3": round(median(one, 1) / total(3, 1), 3),
        "trials": options.trials,
        "work_ms": options.work_ms,
        "repeat": options.repeat,
        "cpus": os.cpu_count(),
    }
    for key, value in results.items():
        print(f"{key}: {value}")
    print(f"load average at end: {os.getloadavg()}")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
