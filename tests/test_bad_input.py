"""Hostile config files, flags and targets: exit 2 and one line, never a traceback or a hang.

Every case fails before a worker could start, so they run in-process through ``cli.main``
(the real entry point, error mapping included) and stay fast.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fixture

from repro_check import cli
from repro_check.checks import run as engine
from repro_check.errors import ConfigError
from repro_check.plan.config import MAX_RUNS, MAX_TRIALS, build_plan
from repro_check.plan.config_files import MAX_CONFIG_BYTES
from repro_check.results.validate import MAX_COUNT

TARGET = fixture("deterministic")


pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM")


@pytest.fixture(autouse=True)
def no_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if anything reaches the engine; restore the SIGTERM handler main() sets."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("bad input reached run_check: workers would have started")

    monkeypatch.setattr(engine, "run_check", refuse)
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


class Hang(Exception):
    pass


def main(capsys: pytest.CaptureFixture[str], *args: str, timeout: int = 30) -> tuple[int, str]:
    """``repro-check ARGS`` in-process: (exit code, stderr); a hang fails instead of blocking."""

    def hang(_signum: int, _frame: Any) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(timeout)
    try:
        cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    except Hang:
        pytest.fail(f"repro-check {' '.join(args)!r} hangs")
    else:
        pytest.fail("cli.main returned without exiting")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert isinstance(code, int), code
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run_with_config(capsys: pytest.CaptureFixture[str], config: Path, *flags: str) -> str:
    code, err = main(capsys, "run", TARGET, "--config", str(config), *flags)
    return assert_one_line(code, err, str(config))


# --- config files -----------------------------------------------------------------------------


def test_non_utf8_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes(b'name = "caf\xe9"\n')
    line = run_with_config(capsys, config)
    assert "not UTF-8" in line


def test_non_utf8_pyproject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.repro-check]\n# \xff\xfe\ntrials = 3\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml .*not UTF-8"):
        build_plan(TARGET, {}, start=tmp_path)


@pytest.mark.skipif(not os.path.exists("/proc/1/mem"), reason="needs Linux /proc")
def test_unreadable_config_proc_mem(capsys: pytest.CaptureFixture[str]) -> None:
    line = run_with_config(capsys, Path("/proc/1/mem"))
    assert "cannot read" in line


def test_unreadable_config_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "secret.toml"
    config.write_text("trials = 3\n")
    config.chmod(0)
    try:
        if os.access(config, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        line = run_with_config(capsys, config)
        assert "cannot read" in line and "Permission denied" in line
    finally:
        config.chmod(0o600)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_config(capsys: pytest.CaptureFixture[str]) -> None:
    line = run_with_config(capsys, Path("/dev/zero"))
    assert "not a regular file" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_config_does_not_hang(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    line = run_with_config(capsys, fifo)
    assert "not a regular file" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_pyproject_is_not_a_project_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pyproject.toml")
    (tmp_path / "sub").mkdir()
    plan = build_plan(TARGET, {}, start=tmp_path / "sub")  # returns, with the defaults
    assert plan.runs == 3


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_proc_file_claiming_size_zero_is_read_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    line = run_with_config(capsys, Path("/proc/self/status"))
    assert "invalid TOML" in line


def test_config_too_large(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "huge.toml"
    config.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    line = run_with_config(capsys, config)
    assert "larger than" in line


def test_config_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "directory" in run_with_config(capsys, tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tool = 5\n", "[tool] must be a table"),
        ("[tool]\nrepro-check = 5\n", "[tool.repro-check] must be a table"),
        ("trials = " + "9" * 5000 + "\n", "invalid TOML"),  # beyond int() digits
        ("trials = " + "9" * 4000 + "\n", "trials must be <="),
        ("a = " + "[" * 50_000 + "\n", "invalid TOML"),  # nested too deeply
    ],
)
def test_malformed_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    config = tmp_path / "check.toml"
    config.write_text(text)
    line = run_with_config(capsys, config)
    assert fragment in line
    assert len(line) < 400  # a 4,000-digit value is cut, not echoed


def test_pyproject_tool_not_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("tool = 'x'\n")
    with pytest.raises(ConfigError, match=r"\[tool\] must be a table"):
        build_plan(TARGET, {}, start=tmp_path)


# --- bounds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--runs", "1000000000000"], "--runs must be <= "),
        (["--trials", "99999999999999999999999"], "--trials must be <= "),
        (["--trials", str(MAX_COUNT + 1)], "--trials must be <= "),
        (["--workers", "10000000000000"], "--workers must be <= "),
        (["--threads", "10000000000000"], "--threads must be <= "),
        (["--n-jobs", "10000000000000"], "--n-jobs must be <= "),
        (["--timeout", "1e300"], "--timeout must be"),
        (["--stale-after", "1e300"], "--stale-after must be"),
    ],
)
def test_huge_numbers_are_bounded(
    capsys: pytest.CaptureFixture[str], flags: list[str], fragment: str
) -> None:
    code, err = main(capsys, "run", TARGET, *flags)
    assert_one_line(code, err, fragment)


def test_huge_numbers_in_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "check.toml"
    config.write_text("runs = 1000000000000\n")
    assert "runs must be <= " in run_with_config(capsys, config)


def test_cli_bounds_stay_within_what_the_report_validator_reads() -> None:
    assert MAX_RUNS <= MAX_COUNT and MAX_TRIALS <= MAX_COUNT
    plan = build_plan(TARGET, {"runs": MAX_RUNS, "trials": MAX_TRIALS}, pyproject=False)
    assert (plan.runs, plan.study.trials) == (MAX_RUNS, MAX_TRIALS)


# --- sampler and pruner keyword arguments -----------------------------------------------------


@pytest.mark.parametrize(
    ("table", "flags", "fragments"),
    [
        ('[sampler_kwargs]\nn_startup_trials = "x"\n', [], ["n_startup_trials", "'x'", "int"]),
        ("[sampler_kwargs]\nn_startup_trials = true\n", [], ["n_startup_trials", "int"]),
        ("[sampler_kwargs]\nmultivariate = 1\n", [], ["multivariate", "bool"]),
        ("[sampler_kwargs]\nseed = 3\n", [], ["sampler_kwargs.seed", "--seed"]),
        ("[sampler_kwargs]\nnope = 1\n", [], ["takes no argument 'nope'"]),
        ('[pruner_kwargs]\nlower = "a"\n', ["--pruner", "threshold"], ["lower", "float"]),
        ("[pruner_kwargs]\nnope = 1\n", ["--pruner", "median"], ["MedianPruner", "'nope'"]),
    ],
)
def test_wrong_kwargs_refused_before_anything_runs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    flags: list[str],
    fragments: list[str],
) -> None:
    config = tmp_path / "check.toml"
    config.write_text(table)
    line = run_with_config(capsys, config, *flags)  # no_workers: run_check was never called
    assert "cannot build the study" in line
    for fragment in fragments:
        assert fragment in line


def test_right_kwargs_pass() -> None:
    flags = {"sampler_kwargs": {"n_startup_trials": 5, "prior_weight": 2}}  # an int for a float
    plan = build_plan(TARGET, flags, pyproject=False)
    assert dict(plan.study.sampler_kwargs) == {"n_startup_trials": 5, "prior_weight": 2}
    hyperband = {"pruner": "hyperband", "pruner_kwargs": {"max_resource": "auto"}}
    assert build_plan(TARGET, hyperband, pyproject=False).study.pruner == "hyperband"


# --- targets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("pkg.mod\udcff:objective", "lone surrogate"),
        ("\ud800:objective", "lone surrogate"),
        ("evil\x1b[31m:objective", "control character"),
        ("evil\x1b]0;title\x07.py:objective", "control character"),
        ("two\nlines:objective", "control character"),
        ("csi\x9b2J:objective", "control character"),
    ],
)
def test_hostile_target(capsys: pytest.CaptureFixture[str], target: str, fragment: str) -> None:
    code, err = main(capsys, "run", target)
    assert_one_line(code, err, "target", fragment)
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err
    err.encode("utf-8")  # printable: no lone surrogate reached the stream


def test_hostile_name_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = main(capsys, "run", TARGET, "--name", "x\x1b[2J")
    assert_one_line(code, err, "--name", "control character")
    assert "\x1b" not in err


def test_error_lines_escape_what_they_quote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no\x1b[31mne\nxt.toml"
    code, err = main(capsys, "run", TARGET, "--config", str(missing))
    line = assert_one_line(code, err, "not found", "\\x1b[31m", "\\x0a")
    assert "\x1b" not in line


def test_diagnose_replicates_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = main(capsys, "diagnose", TARGET, "--replicates", "1000000000000")
    assert_one_line(code, err, "--replicates must be <= ")
