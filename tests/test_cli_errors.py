"""Bad input: a one-line error naming the problem, exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, cli, fixture, inprocess_cli


def assert_one_line_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.code == 2, result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        ("no_such_module_xyz:objective", ["no such module", "no_such_module_xyz"]),
        (str(FIXTURES / "missing.py"), ["no such file", "missing.py"]),
        (fixture("syntax_error"), ["syntax error", "syntax_error.py", "line 1"]),
        (fixture("import_error"), ["raised ValueError: bad config at import"]),
        (fixture("deterministic", "nope"), ["has no attribute 'nope'"]),
        (fixture("not_callable"), ["not callable", "int"]),
    ],
)
def test_target_load_failures(target: str, fragments: list[str]) -> None:
    assert_one_line_error(inprocess_cli("run", target, "--trials", "2", "--runs", "2"), *fragments)


@pytest.mark.e2e
def test_module_target_importable_from_current_folder() -> None:
    result = cli("run", "deterministic", "--trials", "3", "--runs", "2", cwd=FIXTURES)
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--sampler", "magic"], ["--sampler", "magic"]),
        (["--pruner", "magic"], ["--pruner", "magic"]),
        (["--runs", "1"], ["--runs", ">= 2"]),
        (["--trials", "0"], ["--trials"]),
        (["--direction", "sideways"], ["--direction", "sideways"]),
        (["--device", "tpu"], ["--device", "tpu"]),
        (["--atol", "-1"], ["--atol"]),
        (["--sampler", "grid"], ["search space"]),
        (["--controls", "luck"], ["unknown control 'luck'"]),
        (["--trials", "many"], ["--trials", "integer"]),
        (["--no-such-flag"], ["--no-such-flag"]),
    ],
)
def test_bad_flags(flags: list[str], fragments: list[str]) -> None:
    assert_one_line_error(inprocess_cli("run", fixture("deterministic"), *flags), *fragments)


def test_bad_toml_config(tmp_path: Path) -> None:
    config = tmp_path / "check.toml"
    config.write_text("trials = [unclosed\n")
    assert_one_line_error(
        inprocess_cli("run", fixture("deterministic"), "--config", str(config)),
        "invalid TOML",
        "check.toml",
    )


def test_unknown_config_key(tmp_path: Path) -> None:
    config = tmp_path / "check.toml"
    config.write_text("trails = 5\n")
    assert_one_line_error(
        inprocess_cli("run", fixture("deterministic"), "--config", str(config)),
        "unknown setting 'trails'",
    )


def test_bad_sampler_kwargs_from_config(tmp_path: Path) -> None:
    config = tmp_path / "check.toml"
    config.write_text("[sampler_kwargs]\nno_such_kwarg = 1\n")
    assert_one_line_error(
        inprocess_cli("run", fixture("deterministic"), "--config", str(config), "--trials", "2"),
        "cannot build the study",
        "no_such_kwarg",
    )


@pytest.mark.e2e
def test_cuda_requested_without_cuda(tmp_path: Path) -> None:
    from conftest import has_cuda

    if has_cuda():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(
        inprocess_cli("run", fixture("deterministic"), "--device", "cuda"), "cuda"
    )


@pytest.mark.e2e
def test_config_layers_flags_over_config_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.repro-check]\ntarget = "deterministic"\ntrials = 4\nruns = 2\nsampler = "random"\n'
    )
    (tmp_path / "deterministic.py").write_text((FIXTURES / "deterministic.py").read_text())
    config = tmp_path / "check.toml"
    config.write_text("trials = 6\n")
    out = tmp_path / "r.json"
    result = cli("run", "--config", str(config), "--seed", "3", json_path=out, cwd=tmp_path)
    assert result.code == 0, result.err
    settings = result.report["settings"]
    assert (settings["trials"], settings["runs"], settings["sampler"], settings["seed"]) == (
        6,
        2,
        "random",
        3,
    )
    assert len(result.report["runs"][0]["trials"]) == 6
