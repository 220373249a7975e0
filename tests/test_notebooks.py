"""Notebook mode (issue 24): ``repro-check run tune.ipynb`` runs the code cells as a fresh
kernel would, with script mode's capture, comparison and reports; every location names the
cell (``tune.ipynb, cell 7 (In [7]), line 3``); ``-p NAME VALUE`` sets papermill's parameters.

The parsing (cells, parameters, the location format) is tested in process; the runs end to
end on the small notebooks in tests/fixtures/notebooks/.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, cli, inprocess_cli, one_line_error, trial_count

from repro_check.cli_options import joined_parameters
from repro_check.errors import ConfigError, TargetError
from repro_check.execution import notebook as worker_notebook
from repro_check.plan import notebooks, targets
from repro_check.plan.settings import CheckPlan

NOTEBOOKS = FIXTURES / "notebooks"


def _write(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": kind, "metadata": {"tags": tags}, "source": source}
                    for kind, source, tags in cells
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    return path


# -- in process: the target, the cells, the parameters, the location format


def test_a_notebook_is_a_script_kind_of_target() -> None:
    assert targets.kind("tune.ipynb") == targets.NOTEBOOK
    assert targets.kind("nb/tune.ipynb") == targets.NOTEBOOK
    assert targets.is_script("tune.ipynb")
    assert targets.script_name("nb/tune.ipynb") == "tune.ipynb"
    assert targets.kind("train.py") == targets.SCRIPT


def test_cells_are_numbered_as_the_notebook_shows_them(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.ipynb",
        [
            ("markdown", "# title", []),
            ("code", "import optuna", []),
            ("code", "  \n", []),  # empty: Jupyter gives it no In [K]
            ("code", "n = 1", ["parameters"]),
            ("raw", "x", []),
            ("code", "study = 1", []),
        ],
    )
    cells = notebooks.read_cells(str(path))
    assert [(c.position, c.count, c.code) for c in cells] == [
        (1, 0, False),
        (2, 1, True),
        (3, 0, True),
        (4, 2, True),
        (5, 0, False),
        (6, 3, True),
    ]
    chosen = notebooks.parameters_cell(cells)
    assert chosen is not None and chosen.position == 4


def test_a_file_that_is_not_a_notebook_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(ConfigError, match="is not a notebook"):
        notebooks.read_cells(str(tmp_path / "bad.ipynb"))
    (tmp_path / "list.ipynb").write_text("[]")
    with pytest.raises(ConfigError, match="no list of cells"):
        notebooks.read_cells(str(tmp_path / "list.ipynb"))


def test_a_cells_location_reads_as_the_issue_asks() -> None:
    name = notebooks.cell_name("tune.ipynb", 7, 7)
    assert name == "tune.ipynb, cell 7 (In [7])"
    recorded = f"{name}:3 builds TPESampler() without seed"
    assert notebooks.shown_locations(recorded) == (
        "tune.ipynb, cell 7 (In [7]), line 3 builds TPESampler() without seed"
    )
    assert notebooks.has_location(recorded)
    # a script's location and a bare notebook name are left alone
    assert notebooks.shown_locations("train.py:3: x") == "train.py:3: x"
    assert not notebooks.has_location("tune.ipynb ran")
    # the recorded form still parses as file:line (diagnose's causes read it)
    file, _, line = f"{name}:3".rpartition(":")
    assert (file, line) == (name, "3")


def test_the_console_spells_out_a_cells_location() -> None:
    from repro_check.render.console import make_console

    out = io.StringIO()
    console = make_console(file=out)
    console.print("at tune.ipynb, cell 2 (In [1]):4 builds it")
    assert out.getvalue().strip() == "at tune.ipynb, cell 2 (In [1]), line 4 builds it"


def test_markdown_and_junit_spell_out_a_cells_location() -> None:
    from repro_check.render import junit, markdown

    recorded = "tune.ipynb, cell 2 (In [1]):4 builds it"
    assert markdown.text(recorded) == r"tune.ipynb, cell 2 (In \[1\]), line 4 builds it"
    assert junit.xml_text(recorded) == "tune.ipynb, cell 2 (In [1]), line 4 builds it"
    fix = "# tune.ipynb, cell 2 (In [1]):4: no seed; the line becomes:\ns = S(seed=0)"
    assert (
        markdown._fenced(fix)[1]
        == "# tune.ipynb, cell 2 (In [1]), line 4: no seed; the line becomes:"
    )


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("5", "5"),
        ("0.1", "0.1"),
        ("True", "True"),
        ("[1, 2]", "[1, 2]"),
        ("'a b'", "'a b'"),
        ("adam", "'adam'"),  # not a literal: a string
        ("1e-3", "0.001"),
        ("", "''"),
        ("1e400", "float('inf')"),  # repr(inf) is no Python: it was a NameError in the cell
        ("[1e400]", "'[1e400]'"),
    ],
)
def test_a_parameter_is_a_python_literal_else_a_string(text: str, source: str) -> None:
    assert notebooks.parameter_value(text) == source


def test_parameters_split_and_the_last_one_wins() -> None:
    assert notebooks.split_parameters(["n=5", "lr=0.1", "n=6"]) == (("n", "6"), ("lr", "0.1"))
    with pytest.raises(ConfigError, match="needs a value"):
        notebooks.split_parameters(["n"])
    with pytest.raises(ConfigError, match="a Python name"):
        notebooks.split_parameters(["1n=5"])


def test_the_command_line_joins_p_name_value_before_dashes_only() -> None:
    argv = ["run", "t.ipynb", "-p", "n", "5", "--parameter", "x", "a=b", "--", "-p", "k", "v"]
    assert joined_parameters(argv) == [
        "run",
        "t.ipynb",
        "-p",
        "n=5",
        "--parameter",
        "x=a=b",
        "--",
        "-p",
        "k",
        "v",
    ]
    assert joined_parameters(["run", "t.ipynb", "-p", "n"]) == ["run", "t.ipynb", "-p", "n"]
    assert joined_parameters(["run", "t.ipynb", "-p", "lr", "-1"])[-1] == "lr=-1"
    with pytest.raises(ConfigError, match="-p lr needs a value"):  # it took --runs as lr's
        joined_parameters(["run", "t.ipynb", "-p", "lr", "--runs", "2"])


def test_odd_cell_json_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    bad = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["x = 1", 2]}]}
    with pytest.raises(ConfigError, match="cell 1's source is not text"):
        notebooks.cells_of(bad, "t.ipynb")
    for tags in (None, 5, "parameters"):  # not a list: no tags (a string is not split)
        data = {"cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": "x"}]}
        assert notebooks.cells_of(data, "t.ipynb")[0].tags == ()


def test_assigned_names_of_the_parameters_cell() -> None:
    assert notebooks.assigned_names("n = 5\nlr: float = 0.1\na, b = 1, 2\nx += 1") == {
        "n",
        "lr",
        "a",
        "b",
        "x",
    }
    assert notebooks.assigned_names("%%capture\nn = 5") == set()


def test_p_is_checked_before_anything_runs(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.ipynb",
        [("code", "import optuna", []), ("code", "n_trials = 8", ["parameters"])],
    )
    plan = CheckPlan(target=str(path))
    assert notebooks.with_parameters(plan, ["n_trials=5"]).parameters == (("n_trials", "5"),)
    assert notebooks.with_parameters(plan, None).parameters == ()
    with pytest.raises(ConfigError, match=r"-p n_trail: t.ipynb, cell 2 \(In \[2\]\) does not"):
        notebooks.with_parameters(plan, ["n_trail=5"])
    with pytest.raises(ConfigError, match="is not a notebook"):
        notebooks.with_parameters(CheckPlan(target="train.py"), ["n=5"])
    bare = _write(tmp_path / "bare.ipynb", [("code", "n = 1", [])])
    with pytest.raises(ConfigError, match=r"needs a cell tagged 'parameters' in bare\.ipynb"):
        notebooks.with_parameters(CheckPlan(target=str(bare)), ["n=5"])


def test_a_missing_extra_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "t.ipynb", [("code", "import optuna", [])])
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "IPython" else real(name)
    )
    with pytest.raises(ConfigError) as raised:
        notebooks.with_parameters(CheckPlan(target=str(path)), None)
    assert str(raised.value) == notebooks.MISSING_EXTRA
    assert "pip install 'repro-check-optuna[notebook]'" in str(raised.value)


def test_the_parent_quotes_a_cells_line(tmp_path: Path) -> None:
    import linecache

    path = _write(tmp_path / "q.ipynb", [("code", "import optuna\nx = 1", [])])
    notebooks.with_parameters(CheckPlan(target=str(path)), None)
    assert linecache.getline(f"{path}, cell 1 (In [1])", 2) == "x = 1\n"


def test_a_cell_magic_that_waits_for_a_person_is_refused() -> None:
    cell = notebooks.Cell(3, 2, True, "\n%%debug\nx = 1", ())
    with pytest.raises(TargetError, match=r"cell 3 \(In \[2\]\) cannot run: %%debug"):
        worker_notebook._refuse(cell, "t.ipynb, cell 3 (In [2])")
    worker_notebook._refuse(notebooks.Cell(1, 1, True, "%%capture\nx = 1", ()), "t")
    assert worker_notebook._magic_body_line("\n%%capture out\nx = 1") == 3
    assert worker_notebook._magic_body_line("x = 1") == 0


def test_p_errors_exit_2_on_one_line(tmp_path: Path) -> None:
    seeded = str(NOTEBOOKS / "seeded.ipynb")
    one_line_error(inprocess_cli("run", seeded, "-p", "n_trail", "5"), "does not assign it")
    one_line_error(
        inprocess_cli("run", str(FIXTURES / "deterministic.py"), "-p", "n", "5"),
        "is not a notebook",
    )
    one_line_error(
        inprocess_cli("run", str(NOTEBOOKS / "unseeded.ipynb"), "-p", "n", "5"),
        "needs a cell tagged 'parameters'",
    )
    one_line_error(inprocess_cli("run", seeded, "-p", "n_trials"), "needs a value")


# -- end to end: the notebooks in tests/fixtures/notebooks


@pytest.mark.e2e
def test_a_seeded_notebook_is_reproducible(tmp_path: Path) -> None:
    result = cli("run", "seeded.ipynb", "--runs", "2", cwd=NOTEBOOKS, json_path=tmp_path / "r.json")
    assert result.code == 0, result.out + result.err
    assert "seeded.ipynb · notebook ·" in result.out
    # the study's line, by cell (5th cell, 4th code cell: the 1st is Markdown)
    assert "TPESampler(seed=0) at seeded.ipynb, cell 5 (In [4]), line 1" in result.out
    report = result.report
    assert report is not None and report["mode"] == "script"
    study = report["runs"][0]["studies"][0]
    assert study["at"].endswith("seeded.ipynb, cell 5 (In [4]):1")  # JSON: file:line
    assert trial_count(report, 0, 0) == 8


@pytest.mark.e2e
def test_an_unseeded_sampler_is_named_at_its_cell(tmp_path: Path) -> None:
    result = cli("run", str(NOTEBOOKS / "unseeded.ipynb"), "--runs", "2", cwd=NOTEBOOKS)
    assert result.code == 1, result.out + result.err
    assert "unseeded.ipynb, cell 4 (In [3]), line 1 builds TPESampler() without seed" in result.out


@pytest.mark.e2e
def test_the_checks_controls_seed_the_cells_sampler() -> None:
    result = cli("run", "unseeded.ipynb", "--controls", "all", "--runs", "2", cwd=NOTEBOOKS)
    assert result.code == 0, result.out + result.err
    assert "unseeded.ipynb, cell 4 (In [3]), line 1 builds TPESampler() without seed: seeded" in (
        result.out
    )
    assert "working folder" not in result.out  # IPython's own files are not the notebook's


@pytest.mark.e2e
def test_compare_takes_a_notebook_and_its_parameters() -> None:
    result = cli("compare", "seeded.ipynb", "-p", "n_trials", "3", "--runs", "2", cwd=NOTEBOOKS)
    assert result.code == 0, result.out + result.err
    assert "seeded.ipynb -p n_trials 3 · notebook · 2 runs per condition" in result.out


@pytest.mark.e2e
def test_diagnose_names_the_cell_and_its_line() -> None:
    result = cli("diagnose", "unseeded.ipynb", "--replicates", "2", cwd=NOTEBOOKS, timeout=300)
    assert result.code == 0, result.out + result.err
    assert "sampler_seed" in result.out
    assert (
        "at unseeded.ipynb, cell 4 (In [3]), line 1: sampler = optuna.samplers.TPESampler()"
        in result.out
    )


@pytest.mark.e2e
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_a_torch_cell_with_unseeded_dropout_is_not_reproducible() -> None:
    result = cli("run", str(NOTEBOOKS / "torch_dropout.ipynb"), "--runs", "2", timeout=300)
    assert result.code == 1, result.out + result.err
    assert "runs part at trial 0 (values)" in result.out


@pytest.mark.e2e
def test_magics_shell_and_top_level_await_run_as_in_jupyter() -> None:
    result = cli("run", "magics.ipynb", "--runs", "2", cwd=NOTEBOOKS)
    assert result.code == 0, result.out + result.err
    assert "magics.ipynb, cell 4 (In [4]), line 3" in result.out  # in %%time: its own line


@pytest.mark.e2e
def test_an_unknown_cell_magic_is_an_error_naming_the_cell() -> None:
    result = cli("run", str(NOTEBOOKS / "unknown_magic.ipynb"), "--runs", "2", cwd=NOTEBOOKS)
    assert result.code == 2, result.out + result.err
    assert "unknown_magic.ipynb, cell 2 (In [2]) cannot run: Cell magic `%%sql` not found" in (
        result.out + result.err
    )


STUDY_CELL = (
    "import optuna\n"
    "study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))\n"
    "study.optimize(lambda t: t.suggest_float('x', 0, 1), n_trials=3)\n"
)


@pytest.mark.e2e
def test_an_error_ipython_prints_without_raising_still_fails_the_run(tmp_path: Path) -> None:
    """``%%capture`` runs its body in a nested cell and drops its result: the study's next
    trials never ran, yet the cell "succeeded" and the check said REPRODUCIBLE, exit 0."""
    swallowed = "%%capture\nraise RuntimeError('boom')\nstudy.optimize(lambda t: 0.0, n_trials=3)\n"
    notebook = _write(
        tmp_path / "swallowed.ipynb", [("code", STUDY_CELL, []), ("code", swallowed, [])]
    )
    result = cli("run", str(notebook), "--runs", "2", cwd=tmp_path)
    assert result.code == 3, result.out + result.err
    assert "RuntimeError: boom at swallowed.ipynb, cell 2 (In [2]), line 2" in result.out


@pytest.mark.e2e
def test_matplotlib_inline_and_exit_run_as_in_a_kernel(tmp_path: Path) -> None:
    cells: list[tuple[str, str, list[str]]] = [
        ("code", "%matplotlib inline\n", []),
        ("code", STUDY_CELL, []),
        ("code", "exit()\n", []),
        ("code", "raise RuntimeError('after exit(): never runs')\n", []),
    ]
    notebook = _write(tmp_path / "kernel.ipynb", cells)
    result = cli("run", str(notebook), "--runs", "2", cwd=tmp_path)
    assert result.code == 0, result.out + result.err


@pytest.mark.e2e
def test_a_cell_that_raises_names_its_line() -> None:
    result = cli("run", str(NOTEBOOKS / "raises.ipynb"), "--runs", "2", cwd=NOTEBOOKS)
    assert result.code == 3, result.out + result.err
    assert (
        "the script raised RuntimeError: boom at raises.ipynb, cell 2 (In [2]), line 2: raise"
        in result.out
    )


@pytest.mark.e2e
def test_p_sets_the_parameters_and_the_notebook_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "tune.ipynb"
    shutil.copy(NOTEBOOKS / "seeded.ipynb", path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    stat = path.stat()
    result = cli(
        "run",
        "tune.ipynb",
        "-p",
        "n_trials",
        "5",
        "--runs",
        "2",
        cwd=tmp_path,
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    assert "tune.ipynb -p n_trials 5 · notebook" in result.out
    assert result.report is not None
    assert trial_count(result.report, 0, 0) == 5
    assert result.report["settings"]["parameters"] == {"n_trials": "5"}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "tune.ipynb"]


def test_a_github_annotation_points_at_the_notebook_and_names_the_cell() -> None:
    from repro_check.render.github import Annotation, format_annotation, split_at

    assert notebooks.notebook_of("nb/tune.ipynb, cell 7 (In [6])") == "nb/tune.ipynb"
    assert notebooks.notebook_of("train.py") is None
    assert split_at("nb/tune.ipynb, cell 7 (In [6]):3") == ("nb/tune.ipynb", 1)
    assert split_at("train.py:3") == ("train.py", 3)
    line = format_annotation(
        Annotation("error", "nb/tune.ipynb", 1, "t", "tune.ipynb, cell 7 (In [6]):3 builds it")
    )
    assert line.startswith("::error file=nb/tune.ipynb,line=1,")
    assert line.endswith("::tune.ipynb, cell 7 (In [6]), line 3 builds it")


def test_parameters_are_saved_and_a_baseline_with_others_is_a_settings_change() -> None:
    import msgspec

    from repro_check.plan.settings import settings_mismatches
    from repro_check.results import saved

    plan = CheckPlan(target="tune.ipynb", parameters=(("n_trials", "5"), ("lr", "0.1")))
    data = plan.to_dict("cpu")
    assert data["parameters"] == {"n_trials": "5", "lr": "0.1"}
    assert "parameters" not in CheckPlan(target="train.py").to_dict("cpu")
    decoded = msgspec.to_builtins(msgspec.convert(data, saved.Settings))
    assert CheckPlan.from_dict("tune.ipynb", decoded).parameters == plan.parameters
    bare = CheckPlan(target="tune.ipynb")
    assert settings_mismatches(plan, bare) == [
        "parameters: {'n_trials': '5', 'lr': '0.1'} in the baseline, {} now"
    ]
    assert settings_mismatches(plan, plan) == []
