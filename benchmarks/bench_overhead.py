"""How much does repro-check cost over running the same seeded study N times by hand?

Measured, each ``--repeat`` times (median reported; the order of the three timed commands
rotates between repeats so that drift in machine speed does not favour one of them):

1. hand-run: N fresh ``python -c ...`` processes in a row, each building
   ``optuna.create_study(sampler=TPESampler(seed=0))`` with Optuna logging at WARNING and running
   the same objective for T trials. This is what a user does without the tool.
2. ``repro-check run TARGET --runs N --trials T --workers 1``, and its ratio to (1).
   Goal: <= 1.10.
3. The same with ``--workers 2``, and its ratio to (1). Goal: < 0.65 (on 2 cores).
4. ``repro-check --help``. Goal: < 0.3 s.

Two reference rows give the floor every process pays: a bare interpreter and one that only
imports optuna.

The objective. ``repro_check.examples.quadratic`` costs microseconds per trial, so a study of
it is mostly Optuna's own bookkeeping and ~0.25 s of interpreter start plus ``import optuna``,
and the ratio would mostly measure process start-up. The default target is therefore
``bench_objective.py`` next to this file: the same quadratic plus a fixed, calibrated amount of
CPU-bound, GIL-holding, deterministic work per trial (``--work-ms``, default 5 ms). With the
defaults (T=100 TPE trials) one replicate costs about 1 s, i.e. ~0.5 s objective, ~0.3 s TPE,
~0.25 s start-up. That is still a cheap study (real ones take minutes), so the ratios here are
a harsh upper bound on the overhead a user sees. ``--objective pkg.mod:attr`` benchmarks
another target instead (``--work-ms`` then has no effect).

Why N=4 by default: with 2 workers, N=3 replicates take 2 rounds instead of 3, so the best
possible ``--workers 2`` ratio would be 0.67 and the 0.65 goal could not be met by any tool.
With an even N the ideal is 0.5.

Before timing, one untimed round runs both the hand-run and repro-check (with ``--json``) and
checks they found the same best value, i.e. that both ran the same study.

Run from the repository root (defaults finish in about 1.5 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_overhead.py
    .venv/bin/python benchmarks/bench_overhead.py --runs 4 --trials 200 --repeat 3 --json out.json

``--strict`` exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH_OBJECTIVE = HERE / "bench_objective.py"
SPIN_ENV = "REPRO_CHECK_BENCH_SPIN"
SEED = 0

GOAL_WORKERS_1 = 1.10  # ratio to hand-run, <=
GOAL_WORKERS_2 = 0.65  # ratio to hand-run, <
GOAL_HELP_S = 0.3  # seconds, <

HAND_RUN = """\
import sys
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
{path_setup}from {module} import {attr} as objective
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed={seed}))
study.optimize(objective, n_trials={trials})
print(repr(study.best_value))
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="repro-check overhead versus running the seeded study by hand.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=4, help="replicates N (even N: see docs)")
    parser.add_argument("--trials", type=int, default=100, help="TPE trials T per study")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each measurement")
    parser.add_argument(
        "--work-ms",
        type=float,
        default=5.0,
        help="CPU work per trial in the bundled benchmark objective",
    )
    parser.add_argument(
        "--objective",
        default=None,
        help="benchmark this pkg.mod:attr instead of the bundled objective",
    )
    parser.add_argument(
        "--help-repeat", type=int, default=10, help="repetitions of the --help timing"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if args.runs < 2 or args.trials < 1 or args.repeat < 1 or args.help_repeat < 1:
        parser.error("--runs must be >= 2; --trials, --repeat and --help-repeat >= 1")
    return args


def find_cli() -> str:
    """The repro-check console script of the interpreter running this benchmark."""
    beside = Path(sys.executable).parent / "repro-check"
    if beside.exists():
        return str(beside)
    found = shutil.which("repro-check")
    if found is None:
        sys.exit("bench_overhead: cannot find the repro-check console script")
    return found


def calibrate_spin(work_ms: float) -> int:
    """Loop iterations of ``bench_objective.burn`` that take about ``work_ms`` here."""
    sys.path.insert(0, str(HERE))
    from bench_objective import burn

    probe = 200_000
    burn(probe)  # warm up
    best = min(_timed(lambda: burn(probe)) for _ in range(5))
    return max(0, round(probe * (work_ms / 1000.0) / best))


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _run(cmd: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-10:])
        sys.exit(f"bench_overhead: {' '.join(cmd)!r} exited {result.returncode}:\n{tail}")
    return result


def hand_run_code(target: str, trials: int) -> str:
    location, _, attr = target.rpartition(":")
    if location.endswith(".py"):
        path = Path(location).resolve()
        path_setup = f"sys.path.insert(0, {str(path.parent)!r})\n"
        module = path.stem
    else:
        path_setup, module = "", location
    return HAND_RUN.format(
        path_setup=path_setup, module=module, attr=attr or "objective", seed=SEED, trials=trials
    )


class Bench:
    def __init__(self, args: argparse.Namespace, target: str, env: dict[str, str]) -> None:
        self.args = args
        self.target = target
        self.env = env
        self.cli = find_cli()
        self.hand_cmd = [sys.executable, "-c", hand_run_code(target, args.trials)]

    def tool_cmd(self, workers: int, *extra: str) -> list[str]:
        return [
            self.cli,
            "run",
            self.target,
            "--runs",
            str(self.args.runs),
            "--trials",
            str(self.args.trials),
            "--workers",
            str(workers),
            *extra,
        ]

    def hand_run(self) -> list[str]:
        """N studies in N fresh processes, one after another; returns their best values."""
        return [_run(self.hand_cmd, self.env).stdout.strip() for _ in range(self.args.runs)]

    def tool(self, workers: int) -> None:
        _run(self.tool_cmd(workers), self.env)

    def verify(self) -> None:
        """Untimed: both approaches must find the same best value (the same study ran)."""
        hand = set(self.hand_run())
        with tempfile.TemporaryDirectory() as folder:
            report_path = Path(folder) / "report.json"
            _run(self.tool_cmd(1, "--json", str(report_path)), self.env)
            report = json.loads(report_path.read_text(encoding="utf-8"))
        tool = {repr(float(run["best_value"])) for run in report["runs"]}
        if not report["reproducible"] or len(hand) != 1 or hand != tool:
            sys.exit(
                f"bench_overhead: hand-run best values {sorted(hand)} and repro-check's "
                f"{sorted(tool)} (reproducible={report['reproducible']}) should be one value"
            )
        print(f"check: hand-run and repro-check agree, best value {hand.pop()}")

    def measure(self) -> dict[str, list[float]]:
        actions: dict[str, Callable[[], Any]] = {
            "hand_run": self.hand_run,
            "workers_1": lambda: self.tool(1),
            "workers_2": lambda: self.tool(2),
        }
        times: dict[str, list[float]] = {name: [] for name in actions}
        names = list(actions)
        for repeat in range(self.args.repeat):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(_timed(actions[name]))
            line = "  ".join(f"{n} {times[n][-1]:.3f}s" for n in names)
            print(f"repeat {repeat + 1}/{self.args.repeat}: {line}", flush=True)
        return times

    def measure_startup(self) -> dict[str, list[float]]:
        commands = {
            "help": [self.cli, "--help"],
            "python_bare": [sys.executable, "-c", "pass"],
            "python_import_optuna": [sys.executable, "-c", "import optuna"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(self.args.help_repeat):
            for name, cmd in commands.items():
                times[name].append(_timed(lambda cmd=cmd: _run(cmd, self.env)))
        return times


def summarize(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    if args.objective is None:
        target = f"{BENCH_OBJECTIVE}:objective"
        spin = calibrate_spin(args.work_ms)
        env[SPIN_ENV] = str(spin)
        objective_text = f"bench_objective.py (~{args.work_ms:g} ms CPU/trial, spin={spin})"
    else:
        target, spin = args.objective, None
        objective_text = target
    cores = os.cpu_count() or 1
    bench = Bench(args, target, env)

    print(
        f"repro-check overhead: N={args.runs} runs x T={args.trials} TPE trials, "
        f"objective {objective_text}, {cores} CPUs, {args.repeat} repeats"
    )
    if cores != 2:
        print(f"note: the --workers 2 goal assumes 2 cores; this machine has {cores}")
    bench.verify()
    times = bench.measure()
    times.update(bench.measure_startup())
    stats = {name: summarize(samples) for name, samples in times.items()}

    hand = stats["hand_run"]["median_s"]
    ratio_1 = stats["workers_1"]["median_s"] / hand
    ratio_2 = stats["workers_2"]["median_s"] / hand
    help_s = stats["help"]["median_s"]
    goals = {
        "workers_1_ratio": {"value": ratio_1, "goal": f"<= {GOAL_WORKERS_1}"},
        "workers_2_ratio": {"value": ratio_2, "goal": f"< {GOAL_WORKERS_2}"},
        "help_s": {"value": help_s, "goal": f"< {GOAL_HELP_S}"},
    }
    goals["workers_1_ratio"]["met"] = ratio_1 <= GOAL_WORKERS_1
    goals["workers_2_ratio"]["met"] = ratio_2 < GOAL_WORKERS_2
    goals["help_s"]["met"] = help_s < GOAL_HELP_S

    rows = [
        ("hand-run", f"{args.runs} x python -c (study by hand)", "hand_run", None),
        ("workers_1", "repro-check run --workers 1", "workers_1", "workers_1_ratio"),
        ("workers_2", "repro-check run --workers 2", "workers_2", "workers_2_ratio"),
        ("help", "repro-check --help", "help", "help_s"),
        ("ref", "python -c pass", "python_bare", None),
        ("ref", "python -c 'import optuna'", "python_import_optuna", None),
    ]
    print()
    print(f"{'':34s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'ratio':>7s}  goal")
    for _, label, key, goal_key in rows:
        s = stats[key]
        ratio = goal = ""
        if goal_key is not None:
            g = goals[goal_key]
            verdict = "met" if g["met"] else "MISSED"
            unit = " s" if goal_key == "help_s" else "x"
            if goal_key != "help_s":
                ratio = f"{g['value']:.3f}"
            goal = f"{g['goal']}{unit}  {verdict}"
        print(
            f"{label:34s} {s['median_s']:9.3f} {s['min_s']:8.3f} {s['max_s']:8.3f} "
            f"{ratio:>7s}  {goal}"
        )
    print()
    print(f"workers 1: {ratio_1:.3f}x hand-run (goal <= {GOAL_WORKERS_1}x)")
    print(f"workers 2: {ratio_2:.3f}x hand-run (goal < {GOAL_WORKERS_2}x)")
    print(f"--help:    {help_s:.3f} s (goal < {GOAL_HELP_S} s)")

    if args.json is not None:
        import optuna

        data = {
            "settings": {
                "runs": args.runs,
                "trials": args.trials,
                "repeat": args.repeat,
                "help_repeat": args.help_repeat,
                "target": target,
                "work_ms": args.work_ms if args.objective is None else None,
                "spin": spin,
                "seed": SEED,
            },
            "machine": {
                "cpu_count": cores,
                "python": platform.python_version(),
                "platform": platform.platform(),
                "optuna": optuna.__version__,
            },
            "samples_s": times,
            "stats": stats,
            "goals": goals,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    missed = [name for name, g in goals.items() if not g["met"]]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
