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
    assert {"ruff", "mypy", "mkdocs", "mkdocs-material"} <= pinned  # CI builds the docs too


def test_ci_checks_formatting_and_markers_are_strict() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "ruff format --check ." in ci
    assert "mkdocs build --strict" in ci  # a broken link or a stale reference fails CI
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


def test_the_distribution_name_is_ours_not_the_taken_one() -> None:
    """``repro-check`` on the public index is another project (a higher version than ours, so
    ``pip install -U`` would swap it in): the distribution is ``repro-check-optuna``, the
    command and the import keep their names, and the README says so at the top, as do the
    install page and the CI recipe."""
    from repro_check.execution.environment import PACKAGES

    assert PYPROJECT["project"]["name"] == "repro-check-optuna"
    assert "repro-check-optuna" in PACKAGES and "repro-check" not in PACKAGES
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "repro-check-optuna" in "\n".join(readme.splitlines()[:6])
    ci = (ROOT / "docs" / "how-to" / "ci.md").read_text(encoding="utf-8")
    install = (ROOT / "docs" / "how-to" / "install.md").read_text(encoding="utf-8")
    assert "repro_check_optuna-0.1.0-py3-none-any.whl" in ci
    assert "repro-check-optuna" in install and "repro-check-optuna" in ci
    for text in (readme, ci, install):
        assert "pip install repro-check " not in text and "pip install repro-check\n" not in text
