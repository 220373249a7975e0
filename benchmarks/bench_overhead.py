"""How much does repro-check cost over running the same seeded study N times by hand?

Measured, each ``--repeat`` times (medians reported; the order of the three timed commands
rotates between repeats so that drift in machine speed favours none of them):

1. hand-run: N fresh ``python -c ...`` processes in a row, each building
   ``optuna.create_study(sampler=TPESampler(seed=0))`` with Optuna logging at WARNING and running
   the same objective for T trials. This is what a user does without the tool.
2. ``repro-check run TARGET --runs N --trials T --workers 1``, and its ratio to (1).
   Goal: <= 1.10.
3. The same with ``--workers 2``, and its ratio to (1). Goal: < 0.65 (on 2 cores).
4. ``repro-check --help``. Goal: < 0.3 s.

Next to wall time, the CPU time of all child processes (user + system, workers included) is
shown: on a shared machine it is less noisy than wall time, and the CPU difference between (2)
and (1) is the tool's own work. Two reference rows give the floor every process pays: a bare
interpreter and one that only imports optuna. ``--breakdown`` adds start-up measurements that
split the fixed cost (see the end of this docstring).

The objective. ``repro_check.examples.quadratic`` costs microseconds per trial, so a study of
it is mostly Optuna's own bookkeeping plus ~0.25 s of interpreter start and ``import optuna``,
and the ratio would mostly measure process start-up. The default target is therefore
``bench_objective.py`` next to this file: the same quadratic plus a fixed, calibrated amount of
CPU-bound, GIL-holding, deterministic work per trial (``--work-ms``, default 5 ms; a sleep would
let two workers overlap on fewer cores than they need and flatter ``--workers 2``). With the
defaults (T=100 TPE trials) one replicate costs about 1 s: ~0.5 s objective, ~0.3 s TPE, ~0.25 s
start-up. Real studies take minutes, so these ratios are a harsh upper bound on the overhead a
user sees. ``--objective pkg.mod:attr`` benchmarks another target (``--work-ms`` is then unused).

Why N=4 by default: with 2 workers, N=3 replicates take 2 rounds instead of 3, so the best
possible ``--workers 2`` ratio would be 0.67 and no tool could meet the 0.65 goal. With an even
N the ideal is 0.5.

The hand-run inherits the caller's environment, as a user's would. repro-check's workers run
with ``OMP/MKL/OPENBLAS/...NUM_THREADS=1``, which by itself makes each process ~40-60 ms faster
(OpenBLAS does not start its thread pool), so the default ratios include that saving.
``--hand-thread-env`` gives the hand-run the same variables, so that the ratio shows
repro-check's own overhead alone.

Before timing, one untimed round runs the hand-run and repro-check (with ``--json``) and checks
that they found the same best value, i.e. that both ran the same study.

Run from the repository root (the defaults take about 1.5 minutes on 2 idle cores)::

    .venv/bin/python benchmarks/bench_overhead.py
    .venv/bin/python benchmarks/bench_overhead.py --runs 4 --trials 200 --repeat 3 --json out.json
    .venv/bin/python benchmarks/bench_overhead.py --repeat 1 --breakdown

``--strict`` exits 1 when a goal is missed. Other work on the machine makes every number noisy
(the load average at start is printed); compare runs made under the same load.

``--breakdown`` times, as separate processes: the interpreter alone, ``import optuna`` (the floor
of every worker and every hand-run), optuna plus repro-check's worker modules, the CLI's imports
(typer), ``typer._adapters`` (recent typer releases coerce each option through a pydantic
TypeAdapter, which ``run`` pays and ``--help`` does not), rich (the report), and the smallest
check, ``--runs 2 --trials 1``, against two one-trial hand-runs: the difference is
repro-check's fixed cost per invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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
THREAD_ENV_VARS = (  # what repro_check.execution.controls.worker_env sets to the thread count (1)
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

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

Sample = tuple[float, float]  # (wall seconds, children's CPU seconds)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="repro-check overhead versus running the seeded study by hand.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=4, help="replicates N (use an even N)")
    parser.add_argument("--trials", type=int, default=100, help="TPE trials T per study")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each measurement")
    parser.add_argument(
        "--work-ms", type=float, default=5.0, help="CPU work per trial of the bundled objective"
    )
    parser.add_argument("--objective", default=None, help="benchmark this pkg.mod:attr instead")
    parser.add_argument(
        "--help-repeat", type=int, default=10, help="repetitions of start-up timings"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the parts of the fixed cost"
    )
    parser.add_argument(
        "--hand-thread-env",
        action="store_true",
        help="give the hand-run the thread variables repro-check sets for its workers",
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
    best = min(_timed(lambda: burn(probe))[0] for _ in range(5))
    return max(0, round(probe * (work_ms / 1000.0) / best))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(action: Callable[[], Any]) -> Sample:
    """Wall seconds of ``action`` and CPU seconds of the child processes it waited for."""
    cpu = _children_cpu()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started, _children_cpu() - cpu


def _run(cmd: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-10:])
        sys.exit(f"bench_overhead: {' '.join(cmd)!r} exited {result.returncode}:\n{tail}")
    return result


def _importable(module: str) -> bool:
    check = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([sys.executable, "-c", check], check=False).returncode == 0


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


def summarize(samples: list[Sample]) -> dict[str, float]:
    walls = [wall for wall, _ in samples]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "cpu_median_s": statistics.median(cpu for _, cpu in samples),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, target: str, env: dict[str, str]) -> None:
        self.args = args
        self.target = target
        self.env = env
        self.cli = find_cli()
        self.hand_env = dict(env)
        if args.hand_thread_env:
            self.hand_env.update(dict.fromkeys(THREAD_ENV_VARS, "1"))

    def tool_cmd(self, workers: int, *extra: str, runs: int = 0, trials: int = 0) -> list[str]:
        return [
            self.cli,
            "run",
            self.target,
            "--runs",
            str(runs or self.args.runs),
            "--trials",
            str(trials or self.args.trials),
            "--workers",
            str(workers),
            *extra,
        ]

    def hand_run(self, runs: int = 0, trials: int = 0) -> list[str]:
        """N studies in N fresh processes, one after another; returns their best values."""
        cmd = [sys.executable, "-c", hand_run_code(self.target, trials or self.args.trials)]
        return [_run(cmd, self.hand_env).stdout.strip() for _ in range(runs or self.args.runs)]

    def tool(self, workers: int) -> None:
        _run(self.tool_cmd(workers), self.env)

    def verify(self) -> None:
        """Untimed: both approaches must find the same best value (the same study ran)."""
        hand = set(self.hand_run())
        with tempfile.TemporaryDirectory() as folder:
            report_path = Path(folder) / "report.json"
            _run(self.tool_cmd(1, "--json", str(report_path)), self.env)
            report = json.loads(report_path.read_text(encoding="utf-8"))
        try:
            tool = {repr(float(run["best_value"])) for run in report["runs"]}
            reproducible = report["reproducible"]
        except (KeyError, TypeError, ValueError):
            print("check skipped: the JSON report has no runs[].best_value / reproducible")
            return
        if not reproducible or len(hand) != 1 or hand != tool:
            sys.exit(
                f"bench_overhead: hand-run best values {sorted(hand)} and repro-check's "
                f"{sorted(tool)} (reproducible={reproducible}) should be one value"
            )
        print(f"check: hand-run and repro-check agree, best value {hand.pop()}")

    def measure(self) -> dict[str, list[Sample]]:
        actions: dict[str, Callable[[], Any]] = {
            "hand_run": self.hand_run,
            "workers_1": lambda: self.tool(1),
            "workers_2": lambda: self.tool(2),
        }
        return self._interleaved(actions, self.args.repeat, verbose=True)

    def measure_startup(self) -> dict[str, list[Sample]]:
        commands = {
            "help": [self.cli, "--help"],
            "python_bare": [sys.executable, "-c", "pass"],
            "python_import_optuna": [sys.executable, "-c", "import optuna"],
        }
        return self._interleaved(self._commands(commands), self.args.help_repeat)

    def measure_breakdown(self) -> dict[str, list[Sample]]:
        py = sys.executable
        commands = {
            "import_optuna_worker": [
                py,
                "-c",
                "import optuna, repro_check.execution.worker, repro_check.execution.target",
            ],
            "import_cli": [py, "-c", "import repro_check.cli"],
            "import_rich": [py, "-c", "import rich.console, rich.table, rich.panel"],
        }
        if _importable("typer._adapters"):
            commands["import_typer_adapters"] = [py, "-c", "import typer._adapters"]
        actions = self._commands(commands)
        actions["hand_run_min"] = lambda: self.hand_run(runs=2, trials=1)
        actions["tool_min"] = lambda: _run(self.tool_cmd(1, runs=2, trials=1), self.env)
        return self._interleaved(actions, self.args.help_repeat)

    def _commands(self, commands: dict[str, list[str]]) -> dict[str, Callable[[], Any]]:
        return {name: (lambda cmd=cmd: _run(cmd, self.env)) for name, cmd in commands.items()}

    @staticmethod
    def _interleaved(
        actions: dict[str, Callable[[], Any]], repeat: int, *, verbose: bool = False
    ) -> dict[str, list[Sample]]:
        samples: dict[str, list[Sample]] = {name: [] for name in actions}
        names = list(actions)
        for index in range(repeat):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_timed(actions[name]))
            if verbose:
                line = "  ".join(f"{n} {samples[n][-1][0]:.3f}s" for n in names)
                print(f"repeat {index + 1}/{repeat}: {line}", flush=True)
        return samples


def _row(label: str, stats: dict[str, float], ratio: str = "", goal: str = "") -> str:
    return (
        f"{label:34s} {stats['median_s']:9.3f} {stats['min_s']:8.3f} {stats['max_s']:8.3f} "
        f"{stats['cpu_median_s']:8.3f} {ratio:>7s}  {goal}"
    )


def report_breakdown(stats: dict[str, dict[str, float]], runs: int) -> dict[str, float]:
    """Print the fixed-cost split; return the derived numbers (milliseconds)."""

    def ms(key: str, field: str = "min_s") -> float:
        return stats[key][field] * 1000.0

    labels = {
        "python_bare": "python -c pass",
        "python_import_optuna": "import optuna (worker/hand-run floor)",
        "import_optuna_worker": "import optuna + worker modules",
        "import_cli": "import repro_check.cli (typer)",
        "import_typer_adapters": "import typer._adapters (pydantic)",
        "import_rich": "import rich console/table/panel",
        "hand_run_min": "hand-run, 2 processes x 1 trial",
        "tool_min": "repro-check run --runs 2 --trials 1",
    }
    print()
    print("breakdown (separate processes; min and median ms)")
    for key, label in labels.items():
        if key in stats:
            print(f"  {label:40s} {ms(key):8.1f} {ms(key, 'median_s'):8.1f}")
    derived = {
        "fixed_cost_ms": ms("tool_min") - ms("hand_run_min"),
        "fixed_cost_median_ms": ms("tool_min", "median_s") - ms("hand_run_min", "median_s"),
        "worker_imports_ms": ms("import_optuna_worker") - ms("python_import_optuna"),
        "cli_imports_ms": ms("import_cli") - ms("python_bare"),
    }
    if "import_typer_adapters" in stats:
        derived["typer_pydantic_ms"] = ms("import_typer_adapters") - ms("import_cli")
    print(
        f"  => repro-check's cost over the hand-run at N=2, T=1: {derived['fixed_cost_ms']:.0f} ms"
        f" (min), {derived['fixed_cost_median_ms']:.0f} ms (median)"
    )
    print(
        f"     of which worker modules ~{derived['worker_imports_ms']:.0f} ms per replicate "
        f"(x{runs} at N={runs}), CLI imports ~{derived['cli_imports_ms']:.0f} ms"
        + (
            f", typer's pydantic import alone ~{derived['typer_pydantic_ms']:.0f} ms"
            if "typer_pydantic_ms" in derived
            else ""
        )
    )
    return derived


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
    load = os.getloadavg()[0]
    bench = Bench(args, target, env)

    print(
        f"repro-check overhead: N={args.runs} runs x T={args.trials} TPE trials, "
        f"objective {objective_text}, {cores} CPUs, {args.repeat} repeats"
    )
    if cores != 2:
        print(f"note: the --workers 2 goal assumes 2 cores; this machine has {cores}")
    if args.hand_thread_env:
        print("hand-run gets repro-check's worker thread variables (OPENBLAS_NUM_THREADS=1, ...)")
    if load > 0.5:
        print(f"note: load average {load:.2f} at start: other processes share the cores")
    bench.verify()
    samples = bench.measure()
    samples.update(bench.measure_startup())
    if args.breakdown:
        samples.update(bench.measure_breakdown())
    stats = {name: summarize(values) for name, values in samples.items()}

    hand = stats["hand_run"]["median_s"]
    ratio_1 = stats["workers_1"]["median_s"] / hand
    ratio_2 = stats["workers_2"]["median_s"] / hand
    help_s = stats["help"]["median_s"]
    paired = {
        name: [
            tool[0] / base[0] for tool, base in zip(samples[name], samples["hand_run"], strict=True)
        ]
        for name in ("workers_1", "workers_2")
    }
    goals: dict[str, dict[str, Any]] = {
        "workers_1_ratio": {
            "value": ratio_1,
            "goal": f"<= {GOAL_WORKERS_1}",
            "met": ratio_1 <= GOAL_WORKERS_1,
            "paired_ratios": paired["workers_1"],
        },
        "workers_2_ratio": {
            "value": ratio_2,
            "goal": f"< {GOAL_WORKERS_2}",
            "met": ratio_2 < GOAL_WORKERS_2,
            "paired_ratios": paired["workers_2"],
        },
        "help_s": {"value": help_s, "goal": f"< {GOAL_HELP_S}", "met": help_s < GOAL_HELP_S},
    }

    def verdict(key: str, unit: str) -> str:
        goal = goals[key]
        return f"{goal['goal']}{unit}  {'met' if goal['met'] else 'MISSED'}"

    print()
    print(
        f"{'':34s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'cpu s':>8s} {'ratio':>7s}  goal"
    )
    print(_row(f"{args.runs} x python -c (study by hand)", stats["hand_run"]))
    print(
        _row(
            "repro-check run --workers 1",
            stats["workers_1"],
            f"{ratio_1:.3f}",
            verdict("workers_1_ratio", "x"),
        )
    )
    print(
        _row(
            "repro-check run --workers 2",
            stats["workers_2"],
            f"{ratio_2:.3f}",
            verdict("workers_2_ratio", "x"),
        )
    )
    print(_row("repro-check --help", stats["help"], "", verdict("help_s", " s")))
    print(_row("python -c pass", stats["python_bare"]))
    print(_row("python -c 'import optuna'", stats["python_import_optuna"]))
    print()
    for name, ratio, goal in (
        ("workers 1", ratio_1, f"<= {GOAL_WORKERS_1}"),
        ("workers 2", ratio_2, f"< {GOAL_WORKERS_2}"),
    ):
        pairs = paired[name.replace(" ", "_")]
        print(
            f"{name}: {ratio:.3f}x hand-run (goal {goal}x); per-repeat ratios median "
            f"{statistics.median(pairs):.3f}, range {min(pairs):.3f}..{max(pairs):.3f}"
        )
    extra_cpu = stats["workers_1"]["cpu_median_s"] - stats["hand_run"]["cpu_median_s"]
    print(f"workers 1 CPU over hand-run: {extra_cpu:+.3f} s (parent + workers, all {args.runs})")
    print(f"--help: {help_s:.3f} s (goal < {GOAL_HELP_S} s)")

    derived = report_breakdown(stats, args.runs) if args.breakdown else None

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
                "hand_thread_env": args.hand_thread_env,
            },
            "machine": {
                "cpu_count": cores,
                "load_average_at_start": load,
                "python": platform.python_version(),
                "platform": platform.platform(),
                "optuna": optuna.__version__,
            },
            "samples": {
                name: [{"wall_s": wall, "cpu_s": cpu} for wall, cpu in values]
                for name, values in samples.items()
            },
            "stats": stats,
            "goals": goals,
            "breakdown_ms": derived,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    missed = [name for name, goal in goals.items() if not goal["met"]]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
