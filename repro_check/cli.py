"""The command line: parse flags, build the plan, call the core, render, map errors to exit codes.

Commands stay thin; heavy imports (optuna, numpy, rich tables) happen inside them so that
``repro-check --help`` starts fast.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from repro_check.cli_display import (
    Display,
    interruptible,
    output_paths,
    show_run,
    with_progress,
)
from repro_check.cli_options import (
    CHECK,
    OUTPUT,
    SHARED,
    Atol,
    ComparePlotPath,
    ConfigPath,
    ControlsOpt,
    Device,
    Direction,
    Gpus,
    JsonPath,
    JunitPath,
    MarkdownPath,
    Module,
    NJobs,
    NotebookParameters,
    PanelCommand,
    PanelGroup,
    PlotPath,
    Pruner,
    Quiet,
    ReportPlotPath,
    Rtol,
    RunMarkdownPath,
    Runs,
    Sampler,
    ScriptArgs,
    Seed,
    StaleAfter,
    Target,
    Threads,
    Timeout,
    Trials,
    Verbose,
    Version,
    Workers,
    given_controls,
    joined_parameters,
    script_hint,
    usage_message,
)
from repro_check.errors import EXIT_INTERRUPTED, EXIT_USAGE, ReproCheckError
from repro_check.render.safe import one_line

if TYPE_CHECKING:
    from repro_check.plan.settings import CheckPlan, Tolerance

T = TypeVar("T")

app = typer.Typer(
    name="repro-check",
    cls=PanelGroup,
    help="Is your seeded Optuna study reproducible? Runs it N times in fresh processes, "
    "diffs every trial, and says why not.",
    epilog="Run 'repro-check COMMAND -h' for a command's flags.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
command = app.command(cls=PanelCommand)


@app.callback()
def _root(version: Version = False) -> None:
    """repro-check: reproducibility checks for Optuna studies."""


def _plan(options: dict[str, Any], experiments: bool = False, resumes: bool = False) -> CheckPlan:
    """The plan from a command's options (its ``locals()``): every command shares the same
    study and check flags, and flags a command lacks are simply not given. ``resumes``
    (diagnose): the storage and ``resume_at`` stay, for its resume experiment."""
    from repro_check.errors import ConfigError
    from repro_check.execution.target import check_attribute
    from repro_check.plan.config import MAX_RUNS, build_plan, shown
    from repro_check.plan.notebooks import with_parameters
    from repro_check.plan.settings import PLAN_KEYS

    flags = {key: options[key] for key in PLAN_KEYS if key in options}
    flags["direction"] = options.get("direction")  # the flag is --direction (repeatable)
    target, script_args = options.get("target"), list(options.get("args") or [])
    module = options.get("module")
    if module is not None:  # every positional is then the module's own argument
        from repro_check.plan.targets import MODULE_PREFIX

        script_args = ([target] if target is not None else []) + script_args
        target = MODULE_PREFIX + module.strip()
    flags["args"] = tuple(script_args) or None
    replicates = options.get("replicates")  # diagnose's; bounded as --runs is
    if isinstance(replicates, int) and replicates > MAX_RUNS:
        raise ConfigError(f"--replicates must be <= {MAX_RUNS}, got {shown(replicates)}")
    plan = build_plan(target, flags, options.get("config"))
    check_attribute(plan.target)  # `file.py:objectiv`: said now, not after a worker imported it
    plan = with_parameters(plan, options.get("parameter"))  # a notebook's -p, and its extra
    if experiments:  # compare/diagnose need every run of every condition, in this process
        plan = dataclasses.replace(plan, fail_fast=False, resume=False)
        if not resumes:
            plan = dataclasses.replace(plan, storage=None, name=None, resume_at=None)
    return plan


@command
def run(
    target: Target = None,
    args: ScriptArgs = None,
    module: Module = None,
    parameter: NotebookParameters = None,
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
    gpus: Gpus = None,
    atol: Atol = None,
    rtol: Rtol = None,
    controls: ControlsOpt = None,
    fail_fast: Annotated[
        bool | None,
        typer.Option(
            "--fail-fast",
            help="Stop every replicate at the first certain divergence.",
            rich_help_panel=CHECK,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Optuna storage URL for the replicate studies (sqlite:///f.db, "
            "postgresql+psycopg://..., journal:<file>); processes sharing it share the replicates.",
            rich_help_panel=SHARED,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="The check's name: studies are <name>/run-<k> [default storage: "
            "sqlite:///repro-check.db].",
            rich_help_panel=SHARED,
        ),
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option(
            "--resume",
            help="Retake replicates whose process died (no heartbeat).",
            rich_help_panel=SHARED,
        ),
    ] = None,
    stale_after: StaleAfter = None,
    resume_at: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help="Also stop each replicate after K trials and resume it in a fresh process "
            "(load_study); exit 1 if that changes the study.",
            rich_help_panel=CHECK,
        ),
    ] = None,
    config: ConfigPath = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Also compare with this saved run report; exit 1 if the results moved.",
            rich_help_panel=CHECK,
        ),
    ] = None,
    allow_settings_change: Annotated[
        bool,
        typer.Option(
            "--allow-settings-change",
            help="Compare with a baseline made with other settings.",
            rich_help_panel=CHECK,
        ),
    ] = False,
    save_baseline: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Write this run's report as a baseline to commit.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    json_path: JsonPath = None,
    markdown: RunMarkdownPath = None,
    junit: JunitPath = None,
    plot: PlotPath = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    version: Version = False,
) -> None:
    """Run the study N times in fresh processes and say whether the runs agree.

    Exit 0 reproducible, 1 not reproducible (or differs from --baseline), 2 bad input,
    3 a run crashed or timed out.
    """
    from repro_check.checks.run import run_check
    from repro_check.plan.inert import check_settings_apply
    from repro_check.results.report import CheckInterrupted

    plan = _plan(locals())
    check_settings_apply(plan, given_controls(seed, threads))
    outputs = output_paths(json_path, markdown, junit, plot)
    if save_baseline is not None:
        from repro_check.render.files import check_output_paths

        check_output_paths(save_baseline=save_baseline)
    saved = None
    if baseline is not None:
        from repro_check.results.validate import load_run_report

        saved = load_run_report(baseline, plan.tolerance)  # the check's tolerance, not the file's
    display = Display(quiet, verbose)
    try:
        report = with_progress(
            lambda on_progress: run_check(
                plan, on_progress, saved, str(baseline or ""), allow_settings_change
            ),
            display,
        )
    except CheckInterrupted as stop:  # the core built the partial report: only show it
        if stop.report is not None:
            show_run(stop.report, outputs, display)
        typer.echo("interrupted: stopped the workers", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    from repro_check.render import console as console_render
    from repro_check.render.files import write_outputs

    display.written += write_outputs(report, **outputs, step_summary=True)
    warnings = []
    try:  # the report shows even when the baseline cannot be written (then exit 2)
        if save_baseline is not None:
            from repro_check.render import json_report

            if not any(run.finished for run in report.runs):
                warnings.append(f"warning: {save_baseline} not saved: no run finished")
            else:
                json_report.write(report.to_dict(), save_baseline)
                display.written.append(save_baseline)
                if not report.reproducible:
                    warnings.append(
                        f"warning: saved {save_baseline} from a run that is not reproducible"
                    )
    finally:
        display.show(report, lambda console: console_render.render(report, console))
    for warning in warnings:
        typer.echo(warning, err=True)
    raise typer.Exit(report.exit_code)


@command
def compare(
    target: Target = None,
    args: ScriptArgs = None,
    module: Module = None,
    parameter: NotebookParameters = None,
    conditions: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
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
    gpus: Gpus = None,
    atol: Atol = None,
    rtol: Rtol = None,
    config: ConfigPath = None,
    json_path: JsonPath = None,
    markdown: MarkdownPath = None,
    junit: JunitPath = None,
    plot: ComparePlotPath = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    version: Version = False,
) -> None:
    """Seeded vs seed sweep vs uncontrolled, side by side: how much of the result is luck.

    Exit code: that of the fixed_seed condition (as `run`).
    """
    from repro_check.checks.compare import CONDITIONS, condition_controls, run_compare
    from repro_check.errors import ConfigError
    from repro_check.plan.inert import check_settings_apply
    from repro_check.render import console_compare
    from repro_check.render.files import write_outputs

    chosen = [c.strip() for c in (conditions or ",".join(CONDITIONS)).split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CONDITIONS]
    if unknown or not chosen:
        raise ConfigError(
            f"--conditions: unknown condition {unknown[0] if unknown else ''!r} "
            f"(choose from {', '.join(CONDITIONS)})"
        )
    plan = _plan(locals(), experiments=True)
    runs_under = [condition_controls(plan, condition) for condition in chosen]
    check_settings_apply(plan, given_controls(seed, threads), runs_under)
    outputs = output_paths(json_path, markdown, junit, plot)
    display = Display(quiet, verbose)
    result = interruptible(lambda on_progress: run_compare(plan, chosen, on_progress), display)
    display.written += write_outputs(result, **outputs)
    display.show(result, lambda console: console_compare.render(result, console))
    raise typer.Exit(result.exit_code)


@command
def diagnose(
    target: Target = None,
    args: ScriptArgs = None,
    module: Module = None,
    parameter: NotebookParameters = None,
    replicates: Annotated[
        int,
        typer.Option(
            min=2,
            metavar="N",
            help="Replicates per experiment [default: 3, as many as run compares].",
            rich_help_panel=CHECK,
        ),
    ] = 3,
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
    gpus: Gpus = None,
    atol: Atol = None,
    rtol: Rtol = None,
    resume_at: Annotated[
        int | None,
        typer.Option(
            metavar="K",
            help="Also stop replicates after K trials and resume them in a fresh process "
            "(load_study): does resuming change the study?",
            rich_help_panel=CHECK,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The Optuna storage the study uses: the resume experiment runs in it "
            "(at half the trials unless --resume-at).",
            rich_help_panel=SHARED,
        ),
    ] = None,
    config: ConfigPath = None,
    json_path: JsonPath = None,
    markdown: MarkdownPath = None,
    junit: JunitPath = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    version: Version = False,
) -> None:
    """Find which source of randomness breaks reproducibility, and print the fix.

    Exit 0 once the diagnosis completed (whatever it found), 2 bad input, 3 the fully
    controlled runs could not finish.
    """
    from repro_check.checks.diagnose import run_diagnose
    from repro_check.render import console_diagnose
    from repro_check.render.files import write_outputs

    options = dict(locals())
    if storage is not None:  # the resume experiment's studies: diagnose/resume-at-K/...
        options["name"] = "diagnose"
    plan = _plan(options, experiments=True, resumes=True)
    outputs = output_paths(json_path, markdown, junit)
    display = Display(quiet, verbose)
    result = interruptible(lambda on_progress: run_diagnose(plan, replicates, on_progress), display)
    display.written += write_outputs(result, **outputs)
    display.show(result, lambda console: console_diagnose.render(result, console))
    raise typer.Exit(result.exit_code)


@command
def diff(
    report_a: Annotated[
        Path, typer.Argument(metavar="A", help="A saved run report (JSON).", show_default=False)
    ],
    report_b: Annotated[
        Path,
        typer.Argument(metavar="B", help="Another saved run report (JSON).", show_default=False),
    ],
    atol: Atol = None,
    rtol: Rtol = None,
    all_env: Annotated[
        bool,
        typer.Option(
            "--all-env", help="Show identical environment entries too.", rich_help_panel=OUTPUT
        ),
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            metavar="PATH",
            help="Write the diff (results and environments) as JSON here.",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    markdown: MarkdownPath = None,
    junit: JunitPath = None,
    quiet: Quiet = False,
    version: Version = False,
) -> None:
    """Compare two saved run reports: every finished run of both, then environments.

    Floats are compared with --atol/--rtol (exact by default), never the files' tolerance.
    Exit 0 same results (and each side reproducible on its own), 1 different, 2 bad input,
    3 the finished runs agree but a side has runs that did not finish.
    """
    from repro_check.checks.diff import diff_reports
    from repro_check.render import console_diff
    from repro_check.render.files import write_outputs
    from repro_check.results.validate import load_run_reports

    tolerance = _command_tolerance(atol, rtol)
    outputs = output_paths(json_path, markdown, junit)
    a, b = load_run_reports([report_a, report_b], tolerance)  # equal trials: one record
    result = diff_reports(str(report_a), a, str(report_b), b, tolerance)
    display = Display(quiet)
    display.written += write_outputs(result, **outputs)
    display.show(result, lambda console: console_diff.render(result, console, all_env=all_env))
    raise typer.Exit(result.exit_code)


@command
def report(
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="PATH", help="A saved run or compare report (JSON).", show_default=False
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Rebuild the report of a shared check from this Optuna storage instead.",
            rich_help_panel=SHARED,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="The shared check's name (with --storage).",
            rich_help_panel=SHARED,
        ),
    ] = None,
    stale_after: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Seconds without a heartbeat before a replicate counts as dead "
            "[default: the check's own].",
            rich_help_panel=SHARED,
        ),
    ] = None,
    atol: Atol = None,
    rtol: Rtol = None,
    json_path: JsonPath = None,
    markdown: MarkdownPath = None,
    junit: JunitPath = None,
    plot: ReportPlotPath = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    version: Version = False,
) -> None:
    """Re-render a saved report (console and any file format) without running anything.

    The verdict is recomputed from the saved trials with --atol/--rtol (exact by default),
    never the file's tolerance. Exit code: that verdict's.
    """
    from repro_check.render import console_compare
    from repro_check.render.files import write_outputs
    from repro_check.results.compare_report import CompareReport
    from repro_check.results.validate import load_any_report

    outputs = output_paths(json_path, markdown, junit, plot)
    if (path is None) == (storage is None and name is None):
        from repro_check.errors import ConfigError

        raise ConfigError("report takes a saved report PATH, or --storage URL --name NAME")
    display = Display(quiet, verbose)
    if path is None:
        from repro_check.checks.shared import report_from_storage

        if atol is not None or rtol is not None:
            from repro_check.errors import ConfigError

            raise ConfigError(
                "--atol/--rtol judge a saved report PATH; a shared check keeps the tolerance "
                "it was started with"
            )

        rebuilt = report_from_storage(storage, name, stale_after)
        show_run(rebuilt, outputs, display)
        raise typer.Exit(rebuilt.exit_code)
    saved = load_any_report(path, _command_tolerance(atol, rtol))
    if isinstance(saved, CompareReport):
        compared = saved
        display.written += write_outputs(compared, **outputs)
        display.show(compared, lambda console: console_compare.render(compared, console))
    else:
        show_run(saved, outputs, display)
    raise typer.Exit(saved.exit_code)


def _command_tolerance(atol: float | None, rtol: float | None) -> Tolerance:
    """The tolerance a saved report is judged with: the command's flags (exact by default),
    validated as `run`'s are; never the tolerance written in the file being judged."""
    from repro_check.plan.config import check_flags
    from repro_check.plan.settings import Tolerance

    given = check_flags({"atol": atol, "rtol": rtol})
    return Tolerance(given.get("atol", 0.0), given.get("rtol", 0.0))


def _terminate(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors and the documented exit codes."""
    command = typer.main.get_command(app)
    given = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)  # CI cancels with SIGTERM: stop workers as Ctrl-C
    try:
        given = joined_parameters(given)  # -p NAME VALUE, one word for click
        code = command.main(args=given, prog_name="repro-check", standalone_mode=False)
    except ReproCheckError as exc:
        text = script_hint(exc, given, command) or str(exc)
        typer.echo(f"error: {one_line(text)}", err=True)
        sys.exit(exc.exit_code)

    except (typer.Exit, typer.Abort, KeyboardInterrupt) as exc:
        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        message = script_hint(exc, given, command) or usage_message(exc)
        if message is None:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `repro-check`: show the help
            typer.echo(str(exc.format_message()), err=True)  # type: ignore[attr-defined]
        else:
            typer.echo(f"error: {one_line(message)}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
