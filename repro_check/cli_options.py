"""The command line's options and help layout: each flag's type, metavar, help and panel,
declared once and shared by the commands that take it (``cli.py`` holds the commands). Kept
apart because it is a third of the command line and changes for other reasons: a new flag,
not a new behaviour. Also what a usage error on a script target most likely means (its own
arguments typed before ``--``) and the command line corrected, read from the same options."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from repro_check import vocab
from repro_check.__about__ import __version__
from repro_check.errors import ConfigError
from repro_check.plan.notebooks import PARAMETER_FLAGS

# The help groups, in the order every command shows them (run, compare and diagnose share them).
STUDY = "Study"
CHECK = "Check"
CONTROLS = "Controls"
SHARED = "Storage and sharing"
OUTPUT = "Output"
GENERAL = "General"
PANELS = (STUDY, CHECK, CONTROLS, SHARED, OUTPUT, GENERAL)


class PanelCommand(typer.core.TyperCommand):
    """Plain (fast) help with the options grouped under their panels, in ``PANELS`` order."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_word(param), getattr(param, "help", None) or ""))
            else:
                groups.setdefault(getattr(param, "rich_help_panel", None) or GENERAL, []).append(
                    record
                )
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        for panel in PANELS:
            if panel in groups:
                with formatter.section(panel):
                    formatter.write_dl(groups[panel])

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] A B`` / ``[OPTIONS] [TARGET]``: arguments as words, optional ones in
        brackets (typer writes ``{A}`` and ``[[TARGET]]``)."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_word(param) if param.required else f"[{_word(param)}]")
        return pieces


def _word(param: Any) -> str:
    return str(param.metavar or param.name or "").upper()


class PanelGroup(typer.core.TyperGroup):
    """The command list shows each command's whole first sentence (click cuts it at ~45
    characters with "...")."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        PanelCommand.format_options(self, ctx, formatter)  # type: ignore[arg-type]
        self.format_commands(ctx, formatter)


Target = Annotated[
    str | None,
    typer.Argument(
        metavar="TARGET",
        help="train.py (the script, run whole as `python train.py` runs it), tune.ipynb (a "
        "notebook's code cells, top to bottom), or an objective: pkg.module:attr or "
        "path/to/file.py:attr.",
        show_default=False,
    ),
]
Module = Annotated[
    str | None,
    typer.Option(
        "-m",
        "--module",
        metavar="MODULE",
        help="Run the module as a script, as `python -m MODULE ARGS` does (instead of TARGET).",
        show_default=False,
        rich_help_panel=STUDY,
    ),
]
NotebookParameters = Annotated[
    list[str] | None,
    typer.Option(
        *PARAMETER_FLAGS,
        metavar="NAME VALUE",
        help="Set a notebook's parameter after its cell tagged 'parameters' (papermill's "
        "convention; repeatable). VALUE is a Python literal, else a string.",
        show_default=False,
        rich_help_panel=STUDY,
    ),
]
ScriptArgs = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="-- ARGS",
        help="The script's own command-line arguments, after --.",
        show_default=False,
    ),
]
Trials = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="Trials per study [default: 20]; for a script, a cap on each of its studies' "
        "own n_trials [default: none].",
        rich_help_panel=STUDY,
    ),
]
Direction = Annotated[
    list[str] | None,
    typer.Option(
        "--direction",
        metavar="DIRECTION",
        help="minimize or maximize; repeat for a multi-objective study [default: minimize; "
        "a script's studies set their own].",
        rich_help_panel=STUDY,
    ),
]
Sampler = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help=f"{', '.join(vocab.Sampler)}, or pkg.mod:factory "
        f"(called with seed=) [default: {vocab.Sampler.TPE}; a script builds its own].",
        rich_help_panel=STUDY,
    ),
]
Pruner = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help=f"{', '.join(vocab.Pruner)} [default: {vocab.Pruner.NONE}; a script builds its own].",
        rich_help_panel=STUDY,
    ),
]
NJobs = Annotated[
    int | None,
    typer.Option(
        "--n-jobs",
        metavar="N",
        help="Optuna n_jobs [default: 1; a script's optimize calls set their own].",
        rich_help_panel=STUDY,
    ),
]
Runs = Annotated[
    int | None,
    typer.Option(metavar="N", help="Replicates, at least 2 [default: 3].", rich_help_panel=CHECK),
]
Seed = Annotated[
    int | None,
    typer.Option(
        metavar="SEED",
        help="Seed every replicate gets [default: 0]; a script takes it only through the "
        "controls that pass it on.",
        rich_help_panel=CHECK,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="Concurrent replicates [default: one per core, capped at runs; on CUDA one per GPU].",
        rich_help_panel=CHECK,
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        metavar="SECONDS", help="Seconds per replicate before it is killed.", rich_help_panel=CHECK
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="The count the threads control pins torch/OMP/MKL/OpenBLAS to [default: 1]; "
        "with that control off a replicate keeps the shell's thread counts.",
        rich_help_panel=CONTROLS,
    ),
]
Device = Annotated[
    str | None,
    typer.Option(
        metavar="DEVICE", help="auto, cpu or cuda [default: auto].", rich_help_panel=CONTROLS
    ),
]
Gpus = Annotated[
    str | None,
    typer.Option(
        metavar="LIST",
        help="GPUs to place replicates on, one replicate per GPU at a time: all, or nvidia-smi "
        "indices/UUIDs such as 0,1,3 [default on CUDA: every visible GPU].",
        rich_help_panel=CONTROLS,
    ),
]
Atol = Annotated[
    float | None,
    typer.Option(
        metavar="TOL", help="Absolute tolerance for floats [default: 0].", rich_help_panel=CHECK
    ),
]
Rtol = Annotated[
    float | None,
    typer.Option(
        metavar="TOL", help="Relative tolerance for floats [default: 0].", rich_help_panel=CHECK
    ),
]
ConfigPath = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="PATH",
        help="TOML file with settings (overridden by flags).",
        rich_help_panel=CHECK,
    ),
]
ControlsOpt = Annotated[
    str | None,
    typer.Option(
        "--controls",
        metavar="LIST",
        help="Controls to apply: all, none, or a comma-separated list of sampler_seed, "
        "global_rng, trial_reseed, hash_seed, threads, torch_determinism, cudnn "
        "[default: all for an objective, none for a script].",
        rich_help_panel=CONTROLS,
    ),
]
StaleAfter = Annotated[
    float | None,
    typer.Option(
        metavar="SECONDS",
        help="Seconds without a heartbeat before a replicate counts as dead [default: 120].",
        rich_help_panel=SHARED,
    ),
]
JsonPath = Annotated[
    Path | None,
    typer.Option(
        "--json", metavar="PATH", help="Write the report as JSON here.", rich_help_panel=OUTPUT
    ),
]
MarkdownPath = Annotated[
    Path | None,
    typer.Option(metavar="PATH", help="Write a Markdown summary here.", rich_help_panel=OUTPUT),
]
RunMarkdownPath = Annotated[
    Path | None,
    typer.Option(
        "--markdown",
        metavar="PATH",
        help="Write a Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set).",
        rich_help_panel=OUTPUT,
    ),
]
JunitPath = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        help="Write JUnit XML here (one test case per check).",
        rich_help_panel=OUTPUT,
    ),
]
PlotPath = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        help="Draw the runs' histories (.png or .svg; needs matplotlib, the plot extra).",
        rich_help_panel=OUTPUT,
    ),
]
ComparePlotPath = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        metavar="PATH",
        help="Draw the best values per condition, mean ± std (.png or .svg; needs matplotlib, "
        "the plot extra).",
        rich_help_panel=OUTPUT,
    ),
]
ReportPlotPath = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        metavar="PATH",
        help="Draw the runs' histories, or a compare report's best values per condition "
        "(.png or .svg; needs matplotlib, the plot extra).",
        rich_help_panel=OUTPUT,
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"repro-check {__version__}")
        raise typer.Exit()


Version = Annotated[
    bool,
    typer.Option(
        "-V",
        "--version",
        callback=_version,
        is_eager=True,
        expose_value=False,
        help="Show the version and exit.",
        rich_help_panel=GENERAL,
    ),
]
Quiet = Annotated[
    bool,
    typer.Option("-q", "--quiet", help="Print the verdict line only.", rich_help_panel=OUTPUT),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "-v",
        "--verbose",
        help="Also print per-run detail and what the objective printed in each run.",
        rich_help_panel=OUTPUT,
    ),
]


# What a script's argument typed before ``--`` becomes: the command line corrected. A check's
# flag that the script also has (``--seed``) parses as the check's, an unknown one (``--epochs``)
# fails as "No such option"; either way the fix is the same: move it after ``--``.

MODULE_FLAGS = ("-m", "--module")


def _option_names(command: Any) -> tuple[set[str], set[str]]:
    """The command's option names, and those of them that take a value."""
    names: set[str] = set()
    valued: set[str] = set()
    for param in getattr(command, "params", ()):
        if param.param_type_name != "option":
            continue
        spelled = {*param.opts, *param.secondary_opts}
        names |= spelled
        if not param.is_flag and not param.count:
            valued |= spelled
    return names, valued


def _kinds(argv: Sequence[str], start: int, stop: int, command: Any) -> list[str]:
    """Each token's part: ``option`` (the command's), ``value`` (of the option before it),
    ``unknown`` (an option the command lacks) or ``positional``; "" outside ``start:stop``."""
    names, valued = _option_names(command)
    kinds = [""] * len(argv)
    index = start
    while index < stop:
        token = argv[index]
        name = token.split("=", 1)[0]
        if not token.startswith("-") or token == "-":
            kinds[index] = "positional"
        elif name not in names:
            kinds[index] = "unknown"
        else:
            kinds[index] = "option"
            if name in valued and "=" not in token and index + 1 < stop:
                index += 1
                kinds[index] = "value"
        index += 1
    return kinds


def _command_span(argv: Sequence[str], commands: Sequence[str]) -> tuple[int, int]:
    """Where the command's own tokens are: after its name, up to ``--`` (or the end)."""
    start = next((i + 1 for i, token in enumerate(argv) if token in commands), len(argv))
    stop = next((i for i in range(start, len(argv)) if argv[i] == "--"), len(argv))
    return start, stop


def _script_target(argv: Sequence[str], kinds: Sequence[str]) -> int | None:
    """The index of the script target (``train.py``, or the module after ``-m``), or None when
    the target is an objective or not given."""
    from repro_check.plan.targets import is_script

    for index, kind in enumerate(kinds):
        name = argv[index].split("=", 1)[0]
        if kind == "option" and name in MODULE_FLAGS:
            return index if "=" in argv[index] else index + 1
    return next(
        (i for i, kind in enumerate(kinds) if kind == "positional" and is_script(argv[i])), None
    )


def _moved_after_dashes(argv: Sequence[str], moved: set[int]) -> list[str]:
    """``argv`` with the tokens at ``moved`` taken out and put first after ``--`` (added at the
    end when there is none)."""
    dashes = argv.index("--") if "--" in argv else len(argv)
    kept = [token for index, token in enumerate(argv[:dashes]) if index not in moved]
    return [*kept, "--", *(argv[index] for index in sorted(moved)), *argv[dashes + 1 :]]


def _corrected(argv: Sequence[str], moved: set[int]) -> str:
    import shlex

    return "repro-check " + shlex.join(_moved_after_dashes(argv, moved))


def unknown_option_hint(argv: Sequence[str], commands: Sequence[str], command: Any) -> str | None:
    """For an option the command does not have, given with a script target: where the script's
    own arguments go, and the command line corrected (each unknown option, with the words after
    it up to the next of the command's options, moved after ``--``); None for an objective."""
    start, stop = _command_span(argv, commands)
    kinds = _kinds(argv, start, stop, command)
    target = _script_target(argv, kinds)
    if target is None:
        return None
    moved: set[int] = set()
    taking = False
    for index in range(start, stop):
        if kinds[index] == "unknown":
            taking = True
        elif kinds[index] == "option" or index == target:
            taking = False
        if taking:
            moved.add(index)
    if not moved:
        return None
    return f"the script's own arguments go after --: {_corrected(argv, moved)}"


def inert_flag_hint(
    argv: Sequence[str], commands: Sequence[str], command: Any, flag: str, script: str
) -> str:
    """``to pass it to train.py: repro-check run train.py -- --seed 42``: the check's ``flag``
    (every time it is given, with its value) moved after ``--``, for the script."""
    start, stop = _command_span(argv, commands)
    kinds = _kinds(argv, start, stop, command)
    moved: set[int] = set()
    for index in range(start, stop):
        if kinds[index] == "option" and argv[index].split("=", 1)[0] == flag:
            moved.add(index)
            if "=" not in argv[index] and index + 1 < stop and kinds[index + 1] == "value":
                moved.add(index + 1)
    if not moved:  # the flag came from elsewhere (it cannot, for the settings refused)
        return f"to pass it to {script}, put it after --"
    return f"to pass it to {script}: {_corrected(argv, moved)}"


def given_controls(seed: int | None, threads: int | None) -> dict[str, str]:
    """The flags given that only a control reads: refused when no control reads them."""
    given = {"seed": seed, "threads": threads}
    return {key: f"--{key}" for key, value in given.items() if value is not None}


def usage_message(exc: Exception) -> str | None:
    """The one-line text of a command-line usage error (typer/click), else None."""
    format_message = getattr(exc, "format_message", None)
    if callable(format_message) and hasattr(exc, "exit_code"):
        return str(format_message()).strip().splitlines()[0]
    return None


def script_hint(exc: Exception, argv: list[str], group: Any) -> str | None:
    """For a script target, what a usage error most likely means: the script's own arguments
    typed before ``--``. Returns the message to show instead, or None to keep the error's."""
    from repro_check.plan.inert import InertSettingError

    commands = list(getattr(group, "commands", {}))
    if isinstance(exc, InertSettingError):
        if exc.script is None:
            return None
        name = next((token for token in argv if token in commands), "")
        moved = inert_flag_hint(argv, commands, group.commands.get(name), exc.flag, exc.script)
        return f"{exc.base}; {moved}"
    if type(exc).__name__ != "NoSuchOption":
        return None
    message = usage_message(exc)
    ctx = getattr(exc, "ctx", None)
    hint = unknown_option_hint(argv, commands, getattr(ctx, "command", None))
    return None if message is None or hint is None else f"{message}; {hint}"


def joined_parameters(argv: Sequence[str]) -> list[str]:
    """``argv`` with each ``-p NAME VALUE`` (before ``--``) written ``-p NAME=VALUE``: the
    option takes two words, which click's repeatable options cannot; after ``--`` every word is
    the script's own."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            return [*out, *argv[index:]]
        out.append(token)
        pair = argv[index + 1 : index + 3]
        if token in PARAMETER_FLAGS and len(pair) == 2 and "=" not in pair[0] and "--" not in pair:
            if pair[1].startswith("--"):  # ``-p lr --runs 2``: a flag is no value (-1 is)
                raise ConfigError(f"{token} {pair[0]} needs a value (got the flag {pair[1]})")
            out.append(f"{pair[0]}={pair[1]}")
            index += 3
            continue
        index += 1
    return out
