"""Packaging facts that drift silently: one version, typed, pinned tools, the public names."""

from __future__ import annotations

import tomllib
from pathlib import Path

import repro_check
from repro_check.__about__ import __version__

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_single_sourced_in_about() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "repro_check/__about__.py"
    assert repro_check.__version__ == __version__


def test_the_package_is_typed() -> None:
    assert (Path(repro_check.__file__).parent / "py.typed").is_file()


def test_lint_and_type_tools_are_pinned() -> None:
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    pinned = {req.split("==")[0] for req in dev if "==" in req}
    assert {"ruff", "mypy"} <= pinned


def test_ci_checks_formatting_and_markers_are_strict() -> None:
    assert "ruff format --check ." in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "--strict-markers" in PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"]


def test_public_names_stay() -> None:
    from repro_check.execution.devices import DEVICE_ENV

    assert repro_check.DEVICE_ENV == DEVICE_ENV == "REPRO_CHECK_DEVICE"
    assert callable(repro_check.device)
    assert callable(repro_check.check)
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts["repro-check"] == "repro_check.__main__:main"
    assert PYPROJECT["project"]["entry-points"]["pytest11"]["repro_check"] == (
        "repro_check.pytest_plugin"
    )
