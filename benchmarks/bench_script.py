"""Script mode's speed: ``repro-check run train.py`` against running ``python train.py`` by hand.

Issue 11, item 8. Measured, each ``--repeat`` times (medians reported; the order of the three
timed blocks rotates between repeats so that drift in machine speed favours none of them):

1. by hand: four fresh ``python train_script.py`` processes, one after another, each timed
   alone (subprocess, wall clock). The baseline for N runs is the sum of the first N of them:
   three for (2), all four for (3). This is what a user does without the tool.
2. ``repro-check run train_script.py --runs 3 --workers 1``, and its ratio to the sum of three
   by-hand runs. Limit: at most 1.03.
3. ``repro-check run train_script.py --runs 4 --workers 2``, and its ratio to the sum of four
   by-hand runs. Limit: at most 0.55 on 2 cores (0.50 is the ideal: two at a time, nothing
   else).

The ratio printed against each limit is median(repro-check) / median(by-hand sum); the ratios
of each repeat's pair are printed next to it (a shared machine makes single repeats noisy).
Beside wall time, the CPU time of all child processes (user + system, workers included) is
shown: the CPU difference between (2) and three by-hand runs is the tool's own work.

The script. ``train_script.py`` next to this file is a whole seeded study (TPE, seed 0) that
prints its best value. Each trial burns a fixed, calibrated amount of CPU-bound, GIL-holding,
deterministic work (``--work-ms``, default 20 ms; a sleep would let two replicates overlap on
fewer cores than they need and flatter ``--workers 2``). With the defaults (100 trials) one run
takes about 2.5-3 s: ~2 s objective, ~0.4 s TPE, ~0.3 s interpreter start-up and ``import
optuna``, so start-up is a small but honest part, as it is for a real training script (which
takes minutes: these ratios are a harsh bound on what a user sees). ``--script PATH`` times
another script instead (``--work-ms`` and ``--trials`` then only set the environment variables
``REPRO_CHECK_BENCH_SPIN``/``REPRO_CHECK_BENCH_TRIALS`` it may read).

The by-hand runs inherit the caller's environment, as a user's would, and so do repro-check's
script-mode workers (as written: no thread variables pinned on either side since issue 19), so
the ratios show repro-check's own overhead alone.

Before timing, one untimed round runs the script by hand and repro-check (``--runs 4 --workers
2 --json``) and checks that repro-check says REPRODUCIBLE and found the by-hand best value,
i.e. that both ran the same study; every timed by-hand run must print that value too. For a
``--script`` of your own only the REPRODUCIBLE verdict is checked (it may print anything).

``--breakdown`` adds start-up measurements that split the fixed cost: the interpreter alone,
``import optuna``, the script with one trial (the floor of every run), and repro-check on the
script with ``--trials 1`` against three one-trial by-hand runs: the difference is
repro-check's fixed cost per invocation at N=3. It also runs that check with a
``sitecustomize`` on ``PYTHONPATH`` that notes when each worker's interpreter starts and when
it exits, and prints the parent's serial time on either side: from launching repro-check to
its first worker's start (its imports, typer's parsing, the plan) and from the last worker's
exit to its own (comparison, report, exit). The by-hand runs pay neither; the workers' own
start-up is hidden behind the previous replicate except for the first one's.

The calibration of ``--work-ms`` reads the machine's speed at start (the fastest of 20 short
probes), so under load it may give less work per trial; ``--spin N`` fixes the work (the spin
is printed) to compare runs made under different load.

Run from the repository root (the defaults take about 2.5 minutes on 2 idle cores)::

    .venv/bin/python benchmarks/bench_script.py
    .venv/bin/python benchmarks/bench_script.py --repeat 3 --breakdown --json out.json

Exit status: 0 when both limits are met, 1 when one is missed, 2 when a command failed or the
runs disagree (nothing was measured). Other work on the machine makes every number noisy (the
load average at start and end is printed); compare runs made under the same load.
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
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
TRAIN_SCRIPT = HERE / "train_script.py"
SPIN_ENV = "REPRO_CHECK_BENCH_SPIN"
TRIALS_ENV = "REPRO_CHECK_BENCH_TRIALS"

RUNS_1 = 3  # replicates for the --workers 1 measurement
RUNS_2 = 4  # replicates for the --workers 2 measurement (even: 0.50 is reachable)
LIMIT_WORKERS_1 = 1.03  # ratio to the by-hand sum, <=
LIMIT_WORKERS_2 = 0.55  # ratio to the by-hand sum, <=
IDEAL_WORKERS_2 = 0.50

Sample = tuple[float, float]  # (wall seconds, children's CPU seconds)

TIMELINE_ENV = "REPRO_CHECK_BENCH_TIMELINE"
TIMELINE_SITE = """\
import os, sys, time
_MARKS = os.environ.get("REPRO_CHECK_BENCH_TIMELINE")
if _MARKS and "repro_check.execution.worker" in " ".join(sys.orig_argv):
    _started = time.time()
    _real_exit = os._exit

    def _exit(code):
        with open(os.path.join(_MARKS, "worker-%d" % os.getpid()), "w") as mark:
            mark.write("%r %r" % (_started, time.time()))
        _real_exit(code)

    os._exit = _exit
"""
"""A ``sitecustomize`` for ``--breakdown`` only: each repro-check worker notes when its
interpreter started and when it called ``os._exit`` (after sending its results), so the
parent's own serial time before the first worker and after the last one can be read off."""


def fail(message: str) -> NoReturn:
    print(f"bench_script: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="repro-check script mode versus running the script by hand.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--trials", type=int, default=100, help="TPE trials of the script's study")
    parser.add_argument(
        "--work-ms", type=float, default=20.0, help="CPU work per trial of the bundled script"
    )
    parser.add_argument(
        "--spin",
        type=int,
        default=None,
        help="loop iterations per trial instead of calibrating --work-ms (the calibration "
        "reads the machine's speed now, so under load it gives less work; pass the spin a "
        "previous run printed to compare runs made under different load)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each measurement")
    parser.add_argument("--script", type=Path, default=None, help="time this script instead")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the parts of the fixed cost"
    )
    parser.add_argument(
        "--startup-repeat", type=int, default=5, help="repetitions of the --breakdown timings"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.repeat < 1 or args.startup_repeat < 1 or args.work_ms < 0:
        parser.error("--trials, --repeat and --startup-repeat must be >= 1, --work-ms >= 0")
    if args.spin is not None and args.spin < 0:
        parser.error("--spin must be >= 0")
    if args.script is not None and not args.script.is_file():
        parser.error(f"--script {args.script}: no such file")
    return args


def find_cli() -> str:
    """The repro-check console script of the interpreter running this benchmark."""
    beside = Path(sys.executable).parent / "repro-check"
    if beside.exists():
        return str(beside)
    found = shutil.which("repro-check")
    if found is None:
        fail("cannot find the repro-check console script")
    return found


def calibrate_spin(work_ms: float) -> int:
    """Loop iterations of ``train_script.burn`` that take about ``work_ms`` here."""
    sys.path.insert(0, str(HERE))
    from train_script import burn

    probe = 200_000
    burn(probe)  # warm up
    best = min(_timed(lambda: burn(probe))[0] for _ in range(20))  # min: the unloaded speed
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
        fail(f"{' '.join(cmd)!r} exited {result.returncode}:\n{tail}")
    return result


def summarize(samples: Sequence[Sample]) -> dict[str, float]:
    walls = [wall for wall, _ in samples]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "cpu_median_s": statistics.median(cpu for _, cpu in samples),
    }


def _add(samples: Sequence[Sample]) -> Sample:
    return sum(wall for wall, _ in samples), sum(cpu for _, cpu in samples)


class Bench:
    def __init__(self, args: argparse.Namespace, script: Path, env: dict[str, str]) -> None:
        self.args = args
        self.script = script
        self.env = env
        self.cli = find_cli()
        self.hand_env = dict(env)
        self.hand_outputs: set[str] = set()

    def tool_cmd(self, runs: int, workers: int, *extra: str) -> list[str]:
        return [
            self.cli,
            "run",
            str(self.script),
            "--runs",
            str(runs),
            "--workers",
            str(workers),
            *extra,
        ]

    def by_hand_once(self, env: dict[str, str] | None = None) -> str:
        """One ``python train.py``; returns the last line it printed (its best value)."""
        out = _run([sys.executable, str(self.script)], env or self.hand_env).stdout.strip()
        return out.splitlines()[-1] if out else ""

    def by_hand(self) -> list[Sample]:
        """``RUNS_2`` fresh processes in a row, each timed alone."""
        samples = []
        for _ in range(RUNS_2):
            samples.append(_timed(lambda: self.hand_outputs.add(self.by_hand_once())))
        return samples

    def verify(self) -> str | None:
        """Untimed: repro-check says REPRODUCIBLE and, for the bundled script, found the best
        value the script prints by hand (returned; None for another ``--script``)."""
        hand = self.by_hand_once()
        with tempfile.TemporaryDirectory() as folder:
            report_path = Path(folder) / "report.json"
            _run(self.tool_cmd(RUNS_2, 2, "--json", str(report_path)), self.env)
            report = json.loads(report_path.read_text(encoding="utf-8"))
        if self.script != TRAIN_SCRIPT:
            if report.get("reproducible") is not True:
                fail(f"repro-check does not find {self.script} reproducible: nothing to time")
            return None
        try:
            tool = {repr(float(run["best_value"])) for run in report["runs"]}
            reproducible = report["reproducible"]
            studies = {len(run["studies"]) for run in report["runs"]}
        except (KeyError, TypeError, ValueError) as exc:
            fail(f"the JSON report has no runs[].best_value/studies or reproducible ({exc!r})")
        if not reproducible or studies != {1} or tool != {hand}:
            fail(
                f"by hand the script printed {hand!r}; repro-check's best values {sorted(tool)} "
                f"(reproducible={reproducible}, studies per run {sorted(studies)}) should match"
            )
        return hand

    def measure(self) -> dict[str, list[Sample]]:
        """Per repeat: each by-hand run, and the two repro-check commands, order rotating."""
        hand_runs: list[list[Sample]] = []
        samples: dict[str, list[Sample]] = {"workers_1": [], "workers_2": []}
        blocks: dict[str, Callable[[], None]] = {
            "by_hand": lambda: hand_runs.append(self.by_hand()),
            "workers_1": lambda: samples["workers_1"].append(
                _timed(lambda: _run(self.tool_cmd(RUNS_1, 1), self.env))
            ),
            "workers_2": lambda: samples["workers_2"].append(
                _timed(lambda: _run(self.tool_cmd(RUNS_2, 2), self.env))
            ),
        }
        names = list(blocks)
        for index in range(self.args.repeat):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                blocks[name]()
            line = "  ".join(
                [
                    "by hand " + "+".join(f"{wall:.2f}" for wall, _ in hand_runs[-1]) + "s",
                    f"workers_1 {samples['workers_1'][-1][0]:.2f}s",
                    f"workers_2 {samples['workers_2'][-1][0]:.2f}s",
                ]
            )
            print(f"repeat {index + 1}/{self.args.repeat}: {line}", flush=True)
        samples["by_hand_1"] = [one for runs in hand_runs for one in runs]
        samples["by_hand_x3"] = [_add(runs[:RUNS_1]) for runs in hand_runs]
        samples["by_hand_x4"] = [_add(runs[:RUNS_2]) for runs in hand_runs]
        return samples

    def timeline(self) -> dict[str, float] | None:
        """One ``--trials 1`` check with the workers' start and exit noted (``TIMELINE_SITE``):
        seconds from launching repro-check to its first worker's start, and from the last
        worker's exit to repro-check's own; None when the workers left no marks."""
        with tempfile.TemporaryDirectory() as folder:
            site, marks = Path(folder) / "site", Path(folder) / "marks"
            site.mkdir()
            marks.mkdir()
            (site / "sitecustomize.py").write_text(TIMELINE_SITE, encoding="utf-8")
            env = dict(self.env)
            env[TRIALS_ENV] = "1"
            env[TIMELINE_ENV] = str(marks)
            env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
            launched = time.time()
            _run(self.tool_cmd(RUNS_1, 1, "--trials", "1"), env)
            ended = time.time()
            spans = [
                tuple(float(x) for x in mark.read_text(encoding="utf-8").split())
                for mark in marks.iterdir()
            ]
        if len(spans) != RUNS_1:
            return None
        return {
            "total_s": ended - launched,
            "before_first_worker_s": min(start for start, _ in spans) - launched,
            "after_last_worker_s": ended - max(end for _, end in spans),
        }

    def measure_breakdown(self) -> dict[str, list[Sample]]:
        py = sys.executable
        one_trial = dict(self.hand_env)
        one_trial[TRIALS_ENV] = "1"
        tool_env = dict(self.env)
        tool_env[TRIALS_ENV] = "1"
        actions: dict[str, Callable[[], Any]] = {
            "python_bare": lambda: _run([py, "-c", "pass"], self.env),
            "python_import_optuna": lambda: _run([py, "-c", "import optuna"], self.env),
            "by_hand_min": lambda: [self.by_hand_once(one_trial) for _ in range(RUNS_1)],
            "tool_min": lambda: _run(self.tool_cmd(RUNS_1, 1, "--trials", "1"), tool_env),
        }
        samples: dict[str, list[Sample]] = {name: [] for name in actions}
        names = list(actions)
        for index in range(self.args.startup_repeat):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_timed(actions[name]))
        return samples


def _row(label: str, stats: dict[str, float], ratio: str = "", goal: str = "") -> str:
    return (
        f"{label:38s} {stats['median_s']:9.3f} {stats['min_s']:8.3f} {stats['max_s']:8.3f} "
        f"{stats['cpu_median_s']:8.3f} {ratio:>7s}  {goal}"
    )


def report_breakdown(
    stats: dict[str, dict[str, float]], timelines: list[dict[str, float]]
) -> dict[str, float]:
    """Print the fixed-cost split; return the derived numbers (milliseconds)."""

    def ms(key: str, field: str = "min_s") -> float:
        return stats[key][field] * 1000.0

    labels = {
        "python_bare": "python -c pass",
        "python_import_optuna": "python -c 'import optuna'",
        "by_hand_min": f"by hand, {RUNS_1} processes x 1 trial",
        "tool_min": f"repro-check run --runs {RUNS_1} --trials 1",
    }
    print()
    print("breakdown (separate processes; min and median ms)")
    for key, label in labels.items():
        print(f"  {label:40s} {ms(key):8.1f} {ms(key, 'median_s'):8.1f}")
    derived = {
        "fixed_cost_ms": ms("tool_min") - ms("by_hand_min"),
        "fixed_cost_median_ms": ms("tool_min", "median_s") - ms("by_hand_min", "median_s"),
    }
    print(
        f"  => repro-check's cost over the by-hand runs at N={RUNS_1}, 1 trial: "
        f"{derived['fixed_cost_ms']:.0f} ms (min), {derived['fixed_cost_median_ms']:.0f} ms "
        "(median)"
    )
    if timelines:
        for key, label in (
            ("before_first_worker_s", "repro-check launched -> first worker starts"),
            ("after_last_worker_s", "last worker exits -> repro-check exits"),
        ):
            values = [timeline[key] * 1000.0 for timeline in timelines]
            derived[f"{key[:-2]}_ms"] = statistics.median(values)
            print(
                f"  {label}: {statistics.median(values):.0f} ms median "
                f"({min(values):.0f}..{max(values):.0f}, {len(values)} runs at 1 trial)"
            )
        print(
            "     (the parent's serial time: before, its imports, typer's parsing and the plan;\n"
            "     after, the comparison, the report and its exit; the by-hand runs pay neither)"
        )
    else:
        print("  timeline: the workers left no start/exit marks (a sitecustomize elsewhere?)")
    return derived


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    env[TRIALS_ENV] = str(args.trials)
    spin = calibrate_spin(args.work_ms) if args.spin is None else args.spin
    env[SPIN_ENV] = str(spin)
    if args.script is None:
        script = TRAIN_SCRIPT
        script_text = (
            f"train_script.py ({args.trials} TPE trials, ~{args.work_ms:g} ms CPU/trial, "
            f"spin={spin})"
        )
    else:
        script = args.script.resolve()
        script_text = str(script)
    cores = os.cpu_count() or 1
    load_start = os.getloadavg()
    bench = Bench(args, script, env)

    print(f"repro-check script mode: {script_text}, {cores} CPUs, {args.repeat} repeats")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load_start)}")
    if cores != 2:
        print(f"note: the --workers 2 limit assumes 2 cores; this machine has {cores}")
    best = bench.verify()
    if best is None:
        print("check: repro-check finds the script REPRODUCIBLE")
    else:
        print(f"check: by hand and repro-check agree (REPRODUCIBLE), best value {best}")
    samples = bench.measure()
    if best is not None and bench.hand_outputs != {best}:
        fail(f"the timed by-hand runs printed {sorted(bench.hand_outputs)}, expected {best}")
    timelines: list[dict[str, float]] = []
    if args.breakdown:
        samples.update(bench.measure_breakdown())
        for _ in range(args.startup_repeat):
            timeline = bench.timeline()
            if timeline is not None:
                timelines.append(timeline)
    load_end = os.getloadavg()
    stats = {name: summarize(values) for name, values in samples.items()}

    ratio_1 = stats["workers_1"]["median_s"] / stats["by_hand_x3"]["median_s"]
    ratio_2 = stats["workers_2"]["median_s"] / stats["by_hand_x4"]["median_s"]
    paired = {
        "workers_1": [
            tool[0] / hand[0]
            for tool, hand in zip(samples["workers_1"], samples["by_hand_x3"], strict=True)
        ],
        "workers_2": [
            tool[0] / hand[0]
            for tool, hand in zip(samples["workers_2"], samples["by_hand_x4"], strict=True)
        ],
    }
    limits: dict[str, dict[str, Any]] = {
        "workers_1_ratio": {
            "value": ratio_1,
            "limit": f"<= {LIMIT_WORKERS_1}",
            "met": ratio_1 <= LIMIT_WORKERS_1,
            "paired_ratios": paired["workers_1"],
        },
        "workers_2_ratio": {
            "value": ratio_2,
            "limit": f"<= {LIMIT_WORKERS_2}",
            "met": ratio_2 <= LIMIT_WORKERS_2,
            "ideal": IDEAL_WORKERS_2,
            "paired_ratios": paired["workers_2"],
        },
    }

    def verdict(key: str) -> str:
        limit = limits[key]
        return f"{limit['limit']}x  {'met' if limit['met'] else 'MISSED'}"

    print()
    print(
        f"{'':38s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'cpu s':>8s} {'ratio':>7s}  limit"
    )
    print(_row("python train_script.py (one run)", stats["by_hand_1"]))
    print(_row(f"{RUNS_1} x python train_script.py (sum)", stats["by_hand_x3"]))
    print(
        _row(
            f"repro-check run --runs {RUNS_1} --workers 1",
            stats["workers_1"],
            f"{ratio_1:.3f}",
            verdict("workers_1_ratio"),
        )
    )
    print(_row(f"{RUNS_2} x python train_script.py (sum)", stats["by_hand_x4"]))
    print(
        _row(
            f"repro-check run --runs {RUNS_2} --workers 2",
            stats["workers_2"],
            f"{ratio_2:.3f}",
            verdict("workers_2_ratio"),
        )
    )
    print()
    for key, ratio, limit in (
        ("workers_1", ratio_1, f"<= {LIMIT_WORKERS_1}"),
        ("workers_2", ratio_2, f"<= {LIMIT_WORKERS_2}"),
    ):
        pairs = paired[key]
        print(
            f"{key.replace('_', ' ')}: {ratio:.3f}x by hand (limit {limit}x); per-repeat ratios "
            f"median {statistics.median(pairs):.3f}, range {min(pairs):.3f}..{max(pairs):.3f}"
        )
    extra_cpu = stats["workers_1"]["cpu_median_s"] - stats["by_hand_x3"]["cpu_median_s"]
    print(f"workers 1 CPU over by hand: {extra_cpu:+.3f} s (parent + {RUNS_1} workers)")
    derived = report_breakdown(stats, timelines) if args.breakdown else None
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in load_end)}")

    if args.json is not None:
        import optuna

        data = {
            "settings": {
                "script": str(script),
                "trials": args.trials,
                "work_ms": args.work_ms,
                "spin": spin,
                "repeat": args.repeat,
                "runs_workers_1": RUNS_1,
                "runs_workers_2": RUNS_2,
            },
            "machine": {
                "cpu_count": cores,
                "load_average_at_start": list(load_start),
                "load_average_at_end": list(load_end),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "optuna": optuna.__version__,
            },
            "samples": {
                name: [{"wall_s": wall, "cpu_s": cpu} for wall, cpu in values]
                for name, values in samples.items()
            },
            "stats": stats,
            "limits": limits,
            "breakdown_ms": derived,
            "timelines": timelines,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    missed = [name for name, limit in limits.items() if not limit["met"]]
    if missed:
        print(f"MISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
