"""The conventions a CLI's users expect: -h/-V everywhere, -q/-v, grouped help with word
metavars, a flag reference (generated into the docs) that matches the CLI, a "wrote ..." line,
hints that stay whole at any width, labelled progress, and the small messages of issue 9 item
12."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest
import typer
from conftest import cli, fixture, inprocess_cli
from rich.console import Console
from typer.testing import CliRunner

from repro_check.__about__ import __version__
from repro_check.cli import app
from repro_check.cli_options import PANELS

ROOT = Path(__file__).parent.parent
CLI_REFERENCE = ROOT / "docs" / "reference" / "cli.md"
INSTALL_PAGE = ROOT / "docs" / "how-to" / "install.md"
COMMANDS = ["run", "compare", "diagnose", "diff", "report"]
ENV = {"NO_COLOR": "1", "COLUMNS": "80"}


def invoke(*args: str, columns: int = 80) -> tuple[int, str]:
    """The CLI in-process (no worker needed): exit code and stdout."""
    result = CliRunner().invoke(
        app, list(args), env={"NO_COLOR": "1", "COLUMNS": str(columns)}, prog_name="repro-check"
    )
    return result.exit_code, result.output


def click_command(name: str):  # type: ignore[no-untyped-def]
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


# --- item 1: -h, -V, -q, -v, completion ------------------------------------------------------


@pytest.mark.parametrize("args", [[], *([c] for c in COMMANDS)])
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_and_long_help_on_every_command(args: list[str], flag: str) -> None:
    code, out = invoke(*args, flag)
    assert code == 0, out
    assert out.startswith(f"Usage: repro-check {' '.join(args)}".rstrip() + " ")
    assert "-h, --help  " in out or "-h, --help" in out


@pytest.mark.parametrize("args", [[], *([c] for c in COMMANDS)])
@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_on_every_command(args: list[str], flag: str) -> None:
    code, out = invoke(*args, flag)
    assert (code, out) == (0, f"repro-check {__version__}\n")


@pytest.mark.e2e
def test_version_through_the_real_entry_point() -> None:
    result = cli("run", "-V")
    assert (result.code, result.out, result.err) == (0, f"repro-check {__version__}\n", "")


def test_completion_is_offered_and_documented() -> None:
    code, out = invoke("-h")
    assert code == 0
    assert "--install-completion" in out and "--show-completion" in out
    assert "repro-check --install-completion" in INSTALL_PAGE.read_text()
    assert "repro-check --install-completion" in CLI_REFERENCE.read_text()


@pytest.mark.e2e
def test_quiet_prints_the_verdict_line_only(tmp_path: Path) -> None:
    out = tmp_path / "q.json"
    result = cli(
        "run",
        fixture("deterministic"),
        "--runs",
        "2",
        "--trials",
        "3",
        "-q",
        "--json",
        str(out),
        env=ENV,
    )
    assert result.code == 0, result.err
    assert result.out == "REPRODUCIBLE: 2 runs × 3 trials agree bit for bit\n"
    assert result.err == ""  # not even the "wrote" line
    assert json.loads(out.read_text())["verdict"] == "reproducible"  # files are still written


@pytest.mark.e2e
def test_quiet_keeps_the_exit_code_of_a_failing_check() -> None:
    result = cli(
        "run",
        "repro_check.examples.noisy:objective",
        "--runs",
        "2",
        "--trials",
        "3",
        "--quiet",
        env=ENV,
    )
    assert result.code == 1
    assert result.out == "NOT REPRODUCIBLE: runs part at trial 0 (values)\n"


@pytest.mark.e2e
def test_verbose_shows_per_run_detail_and_the_objective_output() -> None:
    result = cli("run", fixture("chatty"), "--runs", "2", "--trials", "2", "-v", env=ENV)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    start = lines.index("Runs:")
    detail = lines[start:]
    assert re.fullmatch(r"run 0: ok, seed 0, 2 trials \(2 complete\), [0-9.e-]+ s", detail[1])
    assert "  output:" in detail
    assert detail.count("    chatty trial 0") == 2 and detail.count("    chatty trial 1") == 2
    without = cli("run", fixture("chatty"), "--runs", "2", "--trials", "2", env=ENV)
    assert "chatty trial" not in without.out and "Runs:" not in without.out.splitlines()


# --- item 2: help groups, metavars, the command list -----------------------------------------


def _sections(help_text: str) -> list[str]:
    return [line[:-1] for line in help_text.splitlines() if re.fullmatch(r"[A-Z][a-z ]+:", line)]


def test_run_compare_diagnose_share_the_help_groups_in_one_order() -> None:
    expected = {
        "run": [
            "Arguments",
            "Study",
            "Check",
            "Controls",
            "Storage and sharing",
            "Output",
            "General",
        ],
        "compare": ["Arguments", "Study", "Check", "Controls", "Output", "General"],
        "diagnose": [  # --storage: the storage its resume experiment runs in
            "Arguments",
            "Study",
            "Check",
            "Controls",
            "Storage and sharing",
            "Output",
            "General",
        ],
    }
    groups_of: dict[str, dict[str, str]] = {}
    for name, sections in expected.items():
        code, out = invoke(name, "-h")
        assert code == 0
        assert _sections(out) == sections, out
        groups_of[name] = {
            opt: param.rich_help_panel
            for param in click_command(name).params
            for opt in param.opts
            if param.param_type_name == "option"
        }
    for flag, panel in groups_of["run"].items():  # a flag sits in the same group everywhere
        for name in ("compare", "diagnose"):
            assert groups_of[name].get(flag, panel) == panel, (name, flag)
    assert list(PANELS) == [
        "Study",
        "Check",
        "Controls",
        "Storage and sharing",
        "Output",
        "General",
    ]


def test_run_help_groups_the_flags_under_their_headings() -> None:
    code, out = invoke("run", "-h")
    assert code == 0
    study = out[out.index("\nStudy:\n") : out.index("\nCheck:\n")]
    assert "--trials N " in study and "--sampler NAME " in study and "--runs" not in study
    controls = out[out.index("\nControls:\n") : out.index("\nStorage and sharing:\n")]
    assert "--controls LIST " in controls and "--device DEVICE " in controls
    shared = out[out.index("\nStorage and sharing:\n") : out.index("\nOutput:\n")]
    assert "--storage URL " in shared and "--stale-after SECONDS " in shared


@pytest.mark.parametrize("name", COMMANDS)
def test_metavars_read_as_words(name: str) -> None:
    code, out = invoke(name, "-h", columns=200)
    assert code == 0
    assert "<" not in out.replace("<name>/run-<k>", "").replace("journal:<file>", ""), out
    assert "[[" not in out and "{" not in out
    for param in click_command(name).params:
        if param.param_type_name == "option" and not param.is_flag:
            # one word per value the option takes (``-p NAME VALUE``)
            assert re.fullmatch(r"[A-Z]+( [A-Z]+)*", param.metavar or ""), (name, param.opts)


def test_usage_lines_show_arguments_as_words() -> None:
    usage = "Usage: repro-check run [OPTIONS] [TARGET] [-- ARGS]\n"  # a script's own ARGS
    assert invoke("run", "-h")[1].startswith(usage)
    assert invoke("diff", "-h")[1].startswith("Usage: repro-check diff [OPTIONS] A B\n")
    assert invoke("report", "-h")[1].startswith("Usage: repro-check report [OPTIONS] [PATH]\n")


@pytest.mark.parametrize("columns", [80, 200])
def test_the_command_list_is_not_cut_off(columns: int) -> None:
    code, out = invoke("-h", columns=columns)
    assert code == 0
    commands = out[out.index("Commands:") :]
    assert "..." not in commands
    flat = " ".join(commands.split())
    assert "run Run the study N times in fresh processes and say whether the runs agree." in flat
    assert "how much of the result is luck." in flat
    assert (
        "report Re-render a saved report (console and any file format) without running "
        "anything." in flat
    )


# --- item 3: help text true for each command, the docs' flag reference = CLI -------------------


def _help_of(name: str, flag: str) -> str:
    for param in click_command(name).params:
        if flag in param.opts:
            return str(param.help)
    raise AssertionError(f"{name} has no {flag}")


def test_help_text_is_true_for_each_command() -> None:
    assert "GITHUB_STEP_SUMMARY" not in _help_of("compare", "--markdown")
    assert "GITHUB_STEP_SUMMARY" in _help_of("run", "--markdown")
    assert _help_of("compare", "--plot").startswith("Draw the best values per condition")
    assert "histories" not in _help_of("compare", "--plot")
    assert _help_of("run", "--plot").startswith("Draw the runs' histories")
    assert _help_of("diff", "--json") == "Write the diff (results and environments) as JSON here."
    assert _help_of("run", "--json") == "Write the report as JSON here."


COMMON = {"-h", "--help", "-V", "--version"}


def _docs_hooks():  # type: ignore[no-untyped-def]
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import docs_hooks
    finally:
        sys.path.pop(0)
    return docs_hooks


def _reference_tables() -> dict[str, dict[str, str]]:
    """The docs' command reference as the site shows it (its markers expanded): for each
    ``## COMMAND`` section's flag table, {flag: metavar ("" for a switch)}."""
    text = _docs_hooks().expand(CLI_REFERENCE.read_text())
    tables: dict[str, dict[str, str]] = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        name = section.split("\n", 1)[0].strip()
        match = re.search(r"^\| flag \| group \| meaning \|\n((?:\|.*\n)+)", section, re.MULTILINE)
        if match is None:
            continue
        flags: dict[str, str] = {}
        for row in match.group(1).splitlines()[1:]:
            first = row.split("|")[1]
            for token in re.findall(r"`([^`]+)`", first):
                flag, _, metavar = token.partition(" ")
                assert flag.startswith("-"), row
                flags[flag] = metavar
        tables[name] = flags
    return tables


def _cli_flags(name: str) -> dict[str, str]:
    flags = {}
    for param in click_command(name).params:
        if param.param_type_name != "option":
            continue
        for opt in param.opts:
            if opt not in COMMON:
                flags[opt] = "" if param.is_flag else str(param.metavar)
    return flags


@pytest.mark.parametrize("name", COMMANDS)
def test_the_flag_reference_matches_the_cli_both_ways(name: str) -> None:
    tables = _reference_tables()
    assert name in tables, f"docs/reference/cli.md has no ## {name} section with its flags"
    documented, real = tables[name], _cli_flags(name)
    assert sorted(set(real) - set(documented)) == [], "flags missing from the reference"
    assert sorted(set(documented) - set(real)) == [], "the reference documents flags the CLI lacks"
    assert documented == real  # the same metavars too


def test_the_flag_reference_covers_every_command() -> None:
    assert sorted(_reference_tables()) == sorted(COMMANDS)
    assert sorted(typer.main.get_command(app).commands) == sorted(COMMANDS)  # type: ignore[attr-defined]


# --- item 4: the "wrote ..." line -------------------------------------------------------------


@pytest.mark.e2e
def test_wrote_line_names_every_file(tmp_path: Path) -> None:
    result = cli(
        "run",
        fixture("deterministic"),
        "--runs",
        "2",
        "--trials",
        "2",
        "--json",
        "repro.json",
        "--markdown",
        "repro.md",
        "--junit",
        "repro.xml",
        cwd=tmp_path,
        env=ENV,
    )
    assert result.code == 0, result.err
    assert result.err.splitlines()[-1] == "wrote repro.json, repro.md, repro.xml"
    assert "wrote" not in result.out  # stdout is the report alone
    assert all((tmp_path / f).is_file() for f in ("repro.json", "repro.md", "repro.xml"))


@pytest.mark.e2e
def test_no_wrote_line_without_files() -> None:
    result = cli("run", fixture("deterministic"), "--runs", "2", "--trials", "2", env=ENV)
    assert result.code == 0
    assert not any(line.startswith("wrote ") for line in result.err.splitlines())


@pytest.mark.e2e
def test_wrote_line_includes_the_saved_baseline(tmp_path: Path) -> None:
    result = cli(
        "run",
        fixture("deterministic"),
        "--runs",
        "2",
        "--trials",
        "2",
        "--save-baseline",
        "base.json",
        cwd=tmp_path,
        env=ENV,
    )
    assert result.code == 0, result.err
    assert result.err.splitlines()[-1] == "wrote base.json"


# --- item 5: suggested commands stay whole, notes wrap under their indent ---------------------


@pytest.mark.e2e
@pytest.mark.parametrize("columns", ["80", "40"])
def test_the_diagnose_hint_stays_whole_and_pasteable(tmp_path: Path, columns: str) -> None:
    folder = tmp_path / "a rather long folder name" / "with more levels" / "below it"
    folder.mkdir(parents=True)
    script = folder / "noisy_objective.py"
    script.write_text((Path(fixture("clock_noise")).parent / "clock_noise.py").read_text())
    target = f"{script}:objective"
    result = cli("run", target, "--runs", "2", "--trials", "30", env={**ENV, "COLUMNS": columns})
    assert result.code == 1, result.out + result.err
    command = shlex.join(["repro-check", "diagnose", target, "--trials", "30"])
    assert f"Hint: run `{command}` to find the cause" in result.out.splitlines()
    assert shlex.split(command)[2] == target  # pasted, the quoted path is one argument


def test_long_notes_wrap_under_their_indent() -> None:
    from repro_check.render.wrap import bullets

    buffer = io.StringIO()
    Console(file=buffer, width=30, no_color=True).print(
        bullets(["run 0 timeout: timed out after 0.5 s (--timeout)"])
    )
    assert buffer.getvalue().splitlines() == [
        "  • run 0 timeout: timed out",
        "    after 0.5 s (--timeout)",
    ]


@pytest.mark.parametrize("width", [40, 80])
def test_a_fix_to_paste_is_never_folded_or_cropped(width: int) -> None:
    from repro_check.render.wrap import code_block, print_parts

    fix = (
        "import random, numpy as np, torch\n"
        "random.seed(0); np.random.seed(0); torch.manual_seed(0)  # before the study starts"
    )
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True)
    print_parts(console, code_block(fix, console))
    lines = buffer.getvalue().splitlines()
    for line in fix.splitlines():
        assert f"  {line}" in lines
    wide = io.StringIO()
    console = Console(file=wide, width=100, no_color=True)
    print_parts(console, code_block(fix, console))
    assert "╭─ fix " in wide.getvalue()  # it fits: still the panel


# --- item 6: progress labels, queued replicates, overall count -------------------------------


@pytest.mark.e2e
def test_progress_events_label_queued_and_count_every_condition() -> None:
    from repro_check.checks.compare import run_compare
    from repro_check.execution.runner import Progress
    from repro_check.plan.config import build_plan
    from repro_check.render.progress import Bars

    events: list[Progress] = []
    plan = build_plan(fixture("deterministic"), {"runs": 2, "trials": 2, "workers": 1}, None)
    run_compare(plan, ["fixed_seed", "seed_sweep"], events.append)
    queued = [e for e in events if e.queued]
    assert [(e.group, e.total) for e in queued] == [
        ("fixed_seed", 2),
        ("fixed_seed", 2),
        ("seed_sweep", 2),
        ("seed_sweep", 2),
    ]
    assert events[: len(queued)] == queued  # every replicate shows as queued before any starts
    bars = Bars()
    snapshots = []
    for event in events:
        bars.update(event)
        snapshots.append((bars.queued, bars.trials_done, bars.trials_planned))
    assert snapshots[3] == (4, 0, 8)
    assert snapshots[-1] == (0, 8, 8)
    assert sorted(bars.label.values()) == [
        "fixed_seed run 0",
        "fixed_seed run 1",
        "seed_sweep run 0",
        "seed_sweep run 1",
    ]
    assert set(bars.status.values()) == {"ok"}


def test_rich_progress_shows_a_labelled_bar_per_replicate_and_an_overall_one() -> None:
    from repro_check.execution.runner import Progress
    from repro_check.render.progress import ReplicateProgress

    progress = ReplicateProgress()
    with progress:
        progress.update(Progress(0, 0, 4, group="no_sampler_seed", queued=True))
        progress.update(Progress(1, 0, 4, group="no_sampler_seed", queued=True))
        progress.update(Progress(0, 3, 4, group="no_sampler_seed"))
        tasks = {task.description: task for task in progress._rich.tasks}
    assert list(tasks) == ["all trials", "no_sampler_seed run 0", "no_sampler_seed run 1"]
    overall = tasks["all trials"]
    assert (overall.completed, overall.total, overall.fields["status"]) == (3, 8, "1 queued")
    assert tasks["no_sampler_seed run 0"].fields["status"] == "running"
    assert tasks["no_sampler_seed run 1"].fields["status"] == "queued"


def test_progress_bars_of_run_are_numbered_by_replicate() -> None:
    from repro_check.execution.runner import Progress
    from repro_check.render.progress import Bars

    bars = Bars()
    bars.update(Progress(1, 0, 5, queued=True))
    bars.update(Progress(0, 0, 5, queued=True))
    bars.update(Progress(0, 3, 5))
    bars.update(Progress(1, 0, 0, status="cancelled"))  # stopped before it started
    assert bars.label == {("", 1): "run 1", ("", 0): "run 0"}
    assert (bars.queued, bars.trials_done, bars.trials_planned) == (0, 3, 5)


# --- item 12: the small ones -------------------------------------------------------------------


@pytest.mark.e2e
def test_module_typo_gets_did_you_mean() -> None:
    target = "repro_check.examples.nosy:objective"
    result = inprocess_cli("run", target, "--runs", "2", "--trials", "2")
    assert result.code == 2
    assert result.err.strip() == (
        "error: no such module: 'repro_check.examples.nosy'; "
        "did you mean 'repro_check.examples.noisy'?"
    )


@pytest.mark.e2e
def test_objective_returning_none_hints_at_a_missing_return(tmp_path: Path) -> None:
    out = tmp_path / "none.json"
    result = cli("run", fixture("returns_none"), "--runs", "2", "--trials", "2", json_path=out)
    assert result.report is not None, result.err
    errors = {t["error"] for run in result.report["runs"] for t in run["trials"]}
    assert errors == {"objective returned None (is a `return` missing?)"}
    assert result.report["verdict"] != "reproducible"


@pytest.mark.e2e
def test_timeout_note_names_the_limit(tmp_path: Path) -> None:
    out = tmp_path / "slow.json"
    result = cli(
        "run",
        fixture("slow"),
        "--runs",
        "2",
        "--trials",
        "20",
        "--timeout",
        "1.5",
        json_path=out,
        env=ENV,
    )
    assert result.code == 3
    assert result.report is not None
    assert {run["error"] for run in result.report["runs"]} == {"timed out after 1.5 s (--timeout)"}
    assert "timed out after 1.5 s (--timeout)" in result.out


@pytest.mark.e2e
def test_already_finished_check_suggests_the_real_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'checks.db'}"
    args = (
        "run",
        fixture("deterministic"),
        "--runs",
        "2",
        "--trials",
        "2",
        "--storage",
        url,
        "--name",
        "nightly",
    )
    assert cli(*args).code == 0
    again = inprocess_cli(*args)
    assert again.code == 2
    assert f"`repro-check report --storage {shlex.quote(url)} --name nightly`" in again.err
    assert "..." not in again.err


@pytest.mark.e2e
def test_check_accepts_direction_like_the_flag() -> None:
    from repro_check.api import check
    from repro_check.errors import ConfigError

    report = check(fixture("deterministic"), runs=2, trials=2, direction="maximize")
    assert report.plan.study.directions == ("maximize",)
    with pytest.raises(ConfigError, match="not both"):
        check(fixture("deterministic"), directions=["maximize"], direction="minimize")


@pytest.mark.e2e
def test_fixture_error_says_relative_paths_are_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repro_check.errors import TargetError
    from repro_check.pytest_plugin import ReproCheck

    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetError) as caught:
        ReproCheck({"runs": 2, "trials": 2}).check("models/train.py:objective")
    assert str(caught.value).startswith("no such file: models/train.py")
    assert f"relative to the current folder, {tmp_path}, not to the test file" in str(caught.value)


def test_verbose_output_shows_terminal_escapes_instead_of_running_them() -> None:
    from repro_check.render import detail
    from repro_check.results.records import RunRecord

    run = RunRecord(0, 0, "ok", (), wall_s=0.5, job=("", 0))
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, no_color=True)
    detail._runs(console, "Runs:", [run], {("", 0): "hello\x1b[2J\x07 world\n"})
    assert buffer.getvalue().splitlines() == [
        "Runs:",
        "run 0: ok, seed 0, 0 trials, 0.5 s",
        "  output:",
        "    hello\\x1b[2J\\x07 world",
    ]
