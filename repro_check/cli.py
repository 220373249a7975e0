"""The command line: parse flags, build the plan, call the core, render, map errors to exit codes.

Commands stay thin; heavy imports (optuna, numpy, rich tables) happen inside them so that
``repro-check --help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from repro_check import __version__
from repro_check.errors import EXIT_INTERRUPTED, EXIT_USAGE, ReproCheckError

if TYPE_CHECKING:
    from rich.console import Console

    from repro_check.report import RunReport
    from repro_check.settings import CheckPlan

T = TypeVar("T")

app = typer.Typer(
    name="repro-check",
    help="Is your seeded Optuna study reproducible? Runs it N times in fresh processes, "
    "diffs every trial, and says why not.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

STUDY = "Study settings"
CHECK = "Check settings"
OUTPUT = "Output"

Target = Annotated[
    str | None,
    typer.Argument(
        help="pkg.module:attr or path/to/file.py:attr (':objective' if omitted).",
        show_default=False,
    ),
]
Trials = Annotated[
    int | None, typer.Option(help="Trials per study [default: 20].", rich_help_panel=STUDY)
]
Direction = Annotated[
    list[str] | None,
    typer.Option(
        "--direction",
        help="minimize or maximize; repeat for a multi-objective study.",
        rich_help_panel=STUDY,
    ),
]
Sampler = Annotated[
    str | None,
    typer.Option(
        help="tpe, random, cmaes, gp, qmc, nsga2, nsga3, grid, bruteforce, or pkg.mod:factory "
        "(called with seed=) [default: tpe].",
        rich_help_panel=STUDY,
    ),
]
Pruner = Annotated[
    str | None,
    typer.Option(
        help="none, median, percentile, hyperband, successive-halving, threshold [default: none].",
        rich_help_panel=STUDY,
    ),
]
NJobs = Annotated[
    int | None, typer.Option("--n-jobs", help="Optuna n_jobs [default: 1].", rich_help_panel=STUDY)
]
Runs = Annotated[
    int | None, typer.Option(help="Replicates, at least 2 [default: 3].", rich_help_panel=CHECK)
]
Seed = Annotated[
    int | None, typer.Option(help="Seed every replicate gets [default: 0].", rich_help_panel=CHECK)
]
Workers = Annotated[
    int | None,
    typer.Option(
        help="Concurrent replicates [default: one per core, capped at runs; 1 on CUDA].",
        rich_help_panel=CHECK,
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(help="Seconds per replicate before it is killed.", rich_help_panel=CHECK),
]
Threads = Annotated[
    int | None,
    typer.Option(
        help="torch/OMP/MKL/OpenBLAS threads per worker [default: 1].", rich_help_panel=CHECK
    ),
]
Device = Annotated[
    str | None, typer.Option(help="auto, cpu or cuda [default: auto].", rich_help_panel=CHECK)
]
Atol = Annotated[
    float | None,
    typer.Option(help="Absolute tolerance for floats [default: 0].", rich_help_panel=CHECK),
]
Rtol = Annotated[
    float | None,
    typer.Option(help="Relative tolerance for floats [default: 0].", rich_help_panel=CHECK),
]
ConfigPath = Annotated[
    Path | None,
    typer.Option(
        "--config", help="TOML file with settings (overridden by flags).", rich_help_panel=CHECK
    ),
]
ControlsOpt = Annotated[
    str | None,
    typer.Option(
        "--controls",
        help="Controls to apply: all, none, or a comma-separated list of sampler_seed, "
        "global_rng, trial_reseed, hash_seed, torch_determinism, cudnn [default: all].",
        rich_help_panel=CHECK,
    ),
]
JsonPath = Annotated[
    Path | None,
    typer.Option("--json", help="Write the report as JSON here.", rich_help_panel=OUTPUT),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"repro-check {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """repro-check: reproducibility checks for Optuna studies."""


def _plan(target: str | None, config: Path | None, **flags: Any) -> CheckPlan:
    from repro_check.config import build_plan

    return build_plan(target, flags, config)


def _console() -> Console:
    from repro_check.render.console import make_console

    return make_console()


def _emit(report: RunReport, json_path: Path | None) -> None:
    from repro_check.render import console as console_render
    from repro_check.render import json_report

    console_render.render(report, _console())
    if json_path is not None:
        json_report.write(report.to_dict(), json_path)


@app.command()
def run(
    target: Target = None,
    runs: Runs = None,
    trials: Trials = None,
    seed: Seed = None,
    direction: Direction = None,
    sampler: Sampler = None,
    pruner: Pruner = None,
    n_jobs: NJobs = None,
    workers: Workers = None,
    timeout: Timeout = None,
    threads: Threads = None,
    device: Device = None,
    atol: Atol = None,
    rtol: Rtol = None,
    controls: ControlsOpt = None,
    config: ConfigPath = None,
    json_path: JsonPath = None,
) -> None:
    """Run the study N times in fresh processes and say whether the runs agree.

    Exit 0 reproducible, 1 not reproducible, 2 bad input, 3 a run crashed or timed out.
    """
    plan = _plan(
        target,
        config,
        runs=runs,
        trials=trials,
        seed=seed,
        directions=direction,
        sampler=sampler,
        pruner=pruner,
        n_jobs=n_jobs,
        workers=workers,
        timeout=timeout,
        threads=threads,
        device=device,
        atol=atol,
        rtol=rtol,
        controls=controls,
    )
    from repro_check.check import run_check
    from repro_check.runner import Interrupted

    try:
        report = _with_progress(lambda on_progress: run_check(plan, on_progress))
    except Interrupted as stop:
        from repro_check import report as report_mod

        runs_done = [r for result in stop.results for r in result.runs]
        if runs_done:
            _emit(report_mod.build("run", plan, "?", runs_done), json_path)
        typer.echo("interrupted: stopped the workers", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _emit(report, json_path)
    raise typer.Exit(report.exit_code)


@app.command()
def compare(
    target: Target = None,
    conditions: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subset of fixed_seed, seed_sweep, uncontrolled [default: all].",
            rich_help_panel=CHECK,
        ),
    ] = None,
    runs: Runs = None,
    trials: Trials = None,
    seed: Seed = None,
    direction: Direction = None,
    sampler: Sampler = None,
    pruner: Pruner = None,
    n_jobs: NJobs = None,
    workers: Workers = None,
    timeout: Timeout = None,
    threads: Threads = None,
    device: Device = None,
    atol: Atol = None,
    rtol: Rtol = None,
    config: ConfigPath = None,
    json_path: JsonPath = None,
) -> None:
    """Seeded vs seed sweep vs uncontrolled, side by side: how much of the result is luck.

    Exit code: that of the fixed_seed condition (as `run`).
    """
    from repro_check.conditions import CONDITIONS, run_compare
    from repro_check.errors import ConfigError
    from repro_check.render import console_compare, json_report

    chosen = [c.strip() for c in (conditions or ",".join(CONDITIONS)).split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CONDITIONS]
    if unknown or not chosen:
        raise ConfigError(
            f"--conditions: unknown condition {unknown[0] if unknown else ''!r} "
            f"(choose from {', '.join(CONDITIONS)})"
        )
    plan = _plan(
        target,
        config,
        runs=runs,
        trials=trials,
        seed=seed,
        directions=direction,
        sampler=sampler,
        pruner=pruner,
        n_jobs=n_jobs,
        workers=workers,
        timeout=timeout,
        threads=threads,
        device=device,
        atol=atol,
        rtol=rtol,
    )
    result = _interruptible(lambda on_progress: run_compare(plan, chosen, on_progress))
    console_compare.render(result, _console())
    if json_path is not None:
        json_report.write(result.to_dict(), json_path)
    raise typer.Exit(result.exit_code)


@app.command()
def diagnose(
    target: Target = None,
    replicates: Annotated[
        int, typer.Option(min=2, help="Replicates per experiment.", rich_help_panel=CHECK)
    ] = 2,
    trials: Trials = None,
    seed: Seed = None,
    direction: Direction = None,
    sampler: Sampler = None,
    pruner: Pruner = None,
    n_jobs: NJobs = None,
    workers: Workers = None,
    timeout: Timeout = None,
    threads: Threads = None,
    device: Device = None,
    atol: Atol = None,
    rtol: Rtol = None,
    config: ConfigPath = None,
    json_path: JsonPath = None,
) -> None:
    """Find which source of randomness breaks reproducibility, and print the fix.

    Exit 0 once the diagnosis completed (whatever it found), 2 bad input, 3 the fully
    controlled runs could not finish.
    """
    from repro_check.diagnose import run_diagnose
    from repro_check.render import console_diagnose, json_report

    plan = _plan(
        target,
        config,
        trials=trials,
        seed=seed,
        directions=direction,
        sampler=sampler,
        pruner=pruner,
        n_jobs=n_jobs,
        workers=workers,
        timeout=timeout,
        threads=threads,
        device=device,
        atol=atol,
        rtol=rtol,
    )
    result = _interruptible(lambda on_progress: run_diagnose(plan, replicates, on_progress))
    console_diagnose.render(result, _console())
    if json_path is not None:
        json_report.write(result.to_dict(), json_path)
    raise typer.Exit(result.exit_code)


def _with_progress(work: Callable[[Any], T]) -> T:
    """Run ``work(on_progress)`` under per-replicate progress bars when stderr is a terminal."""
    if not sys.stderr.isatty():
        return work(None)
    from repro_check.render.progress import ReplicateProgress

    with ReplicateProgress() as progress:
        return work(progress.update)


def _interruptible(work: Callable[[Any], T]) -> T:
    """Like ``_with_progress``; Ctrl-C stops the workers and exits 130."""
    from repro_check.runner import Interrupted

    try:
        return _with_progress(work)
    except Interrupted:
        typer.echo("interrupted: stopped the workers", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _usage_message(exc: Exception) -> str | None:
    """The one-line text of a command-line usage error (typer/click), else None."""
    format_message = getattr(exc, "format_message", None)
    if callable(format_message) and hasattr(exc, "exit_code"):
        return str(format_message()).strip().splitlines()[0]
    return None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors and the documented exit codes."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="repro-check", standalone_mode=False)
    except ReproCheckError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (typer.Exit, typer.Abort, KeyboardInterrupt) as exc:
        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        message = _usage_message(exc)
        if message is None:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `repro-check`: show the help
            typer.echo(str(exc.format_message()), err=True)  # type: ignore[attr-defined]
        else:
            typer.echo(f"error: {message}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
