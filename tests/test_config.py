"""``build_plan`` layering (defaults < pyproject < --config < flags) and its one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repro_check.errors import EXIT_USAGE, ConfigError
from repro_check.plan.config import build_plan
from repro_check.plan.config_files import find_pyproject
from repro_check.plan.settings import Tolerance


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project folder whose (empty) pyproject.toml stops the search from leaving tmp_path."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pyproject(folder: Path, body: str) -> Path:
    return write(folder / "pyproject.toml", f"[tool.repro-check]\n{body}\n")


def config_error(**kwargs: Any) -> str:
    kwargs.setdefault("target", "pkg.mod:objective")
    kwargs.setdefault("flags", {})
    with pytest.raises(ConfigError) as info:
        build_plan(**kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert info.value.exit_code == EXIT_USAGE
    return message


# --- layering ---------------------------------------------------------------------------------


def test_defaults(root: Path) -> None:
    plan = build_plan("pkg.mod:objective", {}, start=root)
    assert plan.target == "pkg.mod:objective"
    assert (plan.runs, plan.seed, plan.workers, plan.timeout) == (3, 0, None, None)
    assert (plan.threads, plan.device) == (1, "auto")
    assert plan.tolerance == Tolerance(0.0, 0.0) and plan.tolerance.exact
    study = plan.study
    assert (study.trials, study.directions, study.sampler, study.pruner) == (
        20,
        ("minimize",),
        "tpe",
        "none",
    )
    assert (dict(study.sampler_kwargs), dict(study.pruner_kwargs), study.n_jobs) == ({}, {}, 1)


def test_pyproject_overrides_defaults(root: Path) -> None:
    pyproject(root, 'runs = 4\nseed = 7\ntrials = 11\nsampler = "random"\natol = 1e-6')
    plan = build_plan("m:f", {}, start=root)
    assert (plan.runs, plan.seed, plan.study.trials, plan.study.sampler) == (4, 7, 11, "random")
    assert plan.tolerance == Tolerance(1e-6, 0.0)
    assert plan.threads == 1  # untouched keys keep their defaults


def test_pyproject_is_found_upward_from_start(root: Path) -> None:
    pyproject(root, "runs = 5")
    deep = root / "src" / "pkg" / "deep"
    deep.mkdir(parents=True)
    assert find_pyproject(deep) == root / "pyproject.toml"
    assert build_plan("m:f", {}, start=deep).runs == 5


def test_only_the_nearest_pyproject_counts(root: Path) -> None:
    pyproject(root, "runs = 5\nseed = 9")
    inner = root / "project"
    pyproject(inner, "runs = 4")
    start = inner / "src"
    start.mkdir()
    plan = build_plan("m:f", {}, start=start)
    assert plan.runs == 4
    assert plan.seed == 0  # the outer pyproject is not merged in


def test_config_file_overrides_pyproject(root: Path) -> None:
    pyproject(root, "runs = 4\nseed = 7\ntrials = 11")
    config = write(root / "check.toml", "runs = 6\ntrials = 12\n")
    plan = build_plan("m:f", {}, config_path=config, start=root)
    assert (plan.runs, plan.seed, plan.study.trials) == (6, 7, 12)


def test_flags_override_config_file(root: Path) -> None:
    pyproject(root, "runs = 4\nseed = 7")
    config = write(root / "check.toml", 'runs = 6\ntrials = 12\ndevice = "cpu"\n')
    plan = build_plan("m:f", {"runs": 8, "seed": 1}, config_path=config, start=root)
    assert (plan.runs, plan.seed, plan.study.trials, plan.device) == (8, 1, 12, "cpu")


def test_unset_flags_do_not_override(root: Path) -> None:
    config = write(root / "check.toml", 'runs = 6\ndirections = ["minimize", "maximize"]\n')
    flags = {"runs": None, "directions": (), "sampler": None}
    plan = build_plan("m:f", flags, config_path=config, start=root)
    assert plan.runs == 6
    assert plan.study.directions == ("minimize", "maximize")
    assert plan.study.sampler == "tpe"


def test_config_file_under_tool_table(root: Path) -> None:
    config = write(root / "cfg" / "other.toml", "[tool.repro-check]\nruns = 9\nrtol = 0.5\n")
    plan = build_plan("m:f", {}, config_path=config, start=root)
    assert plan.runs == 9
    assert plan.tolerance == Tolerance(0.0, 0.5)


def test_target_can_come_from_config_and_flag_wins(root: Path) -> None:
    config = write(root / "check.toml", 'target = "from_config:objective"\n')
    assert build_plan(None, {}, config_path=config, start=root).target == "from_config:objective"
    assert build_plan("flag:fn", {}, config_path=config, start=root).target == "flag:fn"


def test_no_target_anywhere(root: Path) -> None:
    message = config_error(target=None, start=root)
    assert "target" in message


def test_key_spellings_and_aliases(root: Path) -> None:
    pyproject(
        root,
        'n-jobs = 2\ndirection = "maximize"\npruner = "successive_halving"\nsampler = "CMAES"\n'
        "[tool.repro-check.sampler-kwargs]\nn_startup_trials = 3\n",
    )
    plan = build_plan("m:f", {}, start=root)
    assert plan.study.n_jobs == 2
    assert plan.study.directions == ("maximize",)
    assert plan.study.pruner == "successive-halving"
    assert plan.study.sampler == "cmaes"
    assert dict(plan.study.sampler_kwargs) == {"n_startup_trials": 3}


def test_valid_study_combinations(root: Path) -> None:
    config = write(
        root / "check.toml",
        'sampler = "grid"\npruner = "threshold"\n'
        "[sampler_kwargs]\nsearch_space = {x = [0, 1, 2]}\n"
        "[pruner_kwargs]\nupper = 10.0\n",
    )
    plan = build_plan("m:f", {}, config_path=config, start=root)
    assert plan.study.sampler_kwargs == {"search_space": {"x": [0, 1, 2]}}
    assert plan.study.pruner_kwargs == {"upper": 10.0}
    multi = build_plan("m:f", {"directions": ["minimize", "maximize"]}, start=root)
    assert multi.study.directions == ("minimize", "maximize")
    assert multi.study.pruner == "none"


def test_sampler_factory_import_path_is_kept(root: Path) -> None:
    plan = build_plan("m:f", {"sampler": "my_pkg.samplers:make"}, start=root)
    assert plan.study.sampler == "my_pkg.samplers:make"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("runz = 3", ["runz", "unknown"]),
        ('trials = "ten"', ["trials", "integer"]),
        ("runs = 1", ["runs", ">= 2"]),
        ("runs = true", ["runs", "integer"]),
        ("seed = -1", ["seed"]),
        ("timeout = 0", ["timeout"]),
        ("atol = -1e-3", ["atol"]),
        ('sampler = "tpee"', ["sampler", "tpee"]),
        ('pruner = "medain"', ["pruner", "medain"]),
        ('device = "tpu"', ["device", "tpu"]),
        ('directions = ["up"]', ["directions", "up"]),
        ('sampler_kwargs = "n=3"', ["sampler_kwargs"]),
    ],
)
def test_bad_pyproject_value_names_the_key(root: Path, body: str, words: list[str]) -> None:
    path = pyproject(root, body)
    message = config_error(start=root)
    for word in words:
        assert word in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("bogus = 1", ["bogus"]),
        ("runs = 1", ["runs"]),
        ("trials = 2.5", ["trials"]),
        ('pruner = "nope"', ["pruner", "nope"]),
    ],
)
def test_bad_config_value_names_the_key_and_file(root: Path, body: str, words: list[str]) -> None:
    config = write(root / "check.toml", body + "\n")
    message = config_error(config_path=config, start=root)
    for word in [*words, str(config)]:
        assert word in message


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"runs": 1}, ["--runs", ">= 2"]),
        ({"trials": "5"}, ["--trials", "integer"]),
        ({"sampler": "annealing"}, ["--sampler", "annealing"]),
        ({"frobnicate": 1}, ["frobnicate"]),
    ],
)
def test_bad_flag_names_the_flag(root: Path, flags: dict[str, Any], words: list[str]) -> None:
    message = config_error(flags=flags, start=root)
    for word in words:
        assert word in message


def test_flag_error_beats_valid_lower_layers(root: Path) -> None:
    pyproject(root, "runs = 4")
    assert "--runs" in config_error(flags={"runs": 0}, start=root)


def test_grid_without_search_space(root: Path) -> None:
    assert "search_space" in config_error(flags={"sampler": "grid"}, start=root)


def test_percentile_without_percentile(root: Path) -> None:
    message = config_error(flags={"pruner": "percentile"}, start=root)
    assert "pruner_kwargs.percentile" in message


def test_percentile_with_percentile_is_fine(root: Path) -> None:
    pyproject(root, 'pruner = "percentile"\npruner_kwargs = {percentile = 25.0}')
    assert build_plan("m:f", {}, start=root).study.pruner_kwargs == {"percentile": 25.0}


def test_threshold_without_bounds(root: Path) -> None:
    pyproject(root, 'pruner = "threshold"\npruner_kwargs = {n_warmup_steps = 2}')
    message = config_error(start=root)
    assert "lower" in message and "upper" in message


def test_multi_objective_with_pruner_from_flag(root: Path) -> None:
    flags = {"directions": ["minimize", "minimize"], "pruner": "median"}
    message = config_error(flags=flags, start=root)
    assert message.startswith("--pruner")
    assert "multi-objective" in message


def test_multi_objective_with_pruner_from_config(root: Path) -> None:
    config = write(root / "check.toml", 'pruner = "hyperband"\n')
    flags = {"directions": ["minimize", "maximize"]}
    message = config_error(flags=flags, config_path=config, start=root)
    assert str(config) in message and "pruner" in message


def test_invalid_toml_config(root: Path) -> None:
    config = write(root / "broken.toml", "runs = = 3\n")
    message = config_error(config_path=config, start=root)
    assert "invalid TOML" in message and str(config) in message


def test_invalid_toml_pyproject(root: Path) -> None:
    write(root / "pyproject.toml", "[tool.repro-check\nruns = 3\n")
    message = config_error(start=root)
    assert "invalid TOML" in message and "pyproject.toml" in message


def test_missing_config_file(root: Path) -> None:
    missing = root / "nope.toml"
    message = config_error(config_path=missing, start=root)
    assert "not found" in message and str(missing) in message


def test_config_path_is_a_directory(root: Path) -> None:
    message = config_error(config_path=root, start=root)
    assert str(root) in message


def test_bundled_example_configs_are_valid() -> None:
    configs = Path(__file__).parent.parent / "configs"
    found = sorted(configs.glob("*.toml"))
    assert found
    for path in found:
        plan = build_plan("repro_check.examples.quadratic", {}, path, start=path.parent)
        assert plan.study.trials >= 1
