"""Build a ``CheckPlan`` from four layers: defaults < pyproject < ``--config`` TOML < flags.

Every value is validated here, with the layer it came from in the message, so a typo in a config
file is a one-line exit-2 error before any process starts.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from repro_check.errors import ConfigError
from repro_check.settings import (
    DEVICES,
    DIRECTIONS,
    PRUNERS,
    SAMPLERS,
    CheckPlan,
    Controls,
    StudySettings,
    Tolerance,
)

Validator = Callable[[Any], Any]


def _int(minimum: int, maximum: int | None = None) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}, got {value}")
        return int(value)

    return check


def _n_jobs(value: Any) -> int:
    if value == -1:
        return -1
    return int(_int(1)(value))


def _float(*, positive: bool) -> Validator:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            bound = "> 0" if positive else ">= 0"
            raise ValueError(f"must be a finite number {bound}, got {value}")
        return number

    return check


def _stale_after(value: Any) -> float:
    from repro_check.storage import check_stale_after

    return check_stale_after(_float(positive=True)(value))


def _choice(options: tuple[str, ...]) -> Validator:
    def check(value: Any) -> str:
        name = str(value).lower().replace("_", "-")
        if name not in options:
            raise ValueError(f"unknown value {value!r} (choose from {', '.join(options)})")
        return str(name)

    return check


def _sampler(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a sampler name, got {value!r}")
    if ":" in value:  # a factory by import path, resolved in the worker
        return value
    return str(_choice(SAMPLERS)(value))


def _directions(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"must be a direction or a list of them, got {value!r}")
    return tuple(_choice(DIRECTIONS)(item) for item in items)


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table of keyword arguments, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _target(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be 'module:attr' or 'file.py:attr', got {value!r}")
    return value.strip()


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _controls(value: Any) -> Controls:
    """ "all", "none", or control names (a list, or comma-separated)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"must be 'all', 'none' or a list of control names, got {value!r}")
    names = [str(item).strip().replace("-", "_") for item in items if str(item).strip()]
    if not names:
        raise ValueError("is empty: give 'all', 'none' or control names")
    if names == ["all"]:
        return Controls()
    if names == ["none"]:
        return Controls.none()
    unknown = [n for n in names if n not in Controls.names()]
    if unknown:
        raise ValueError(
            f"unknown control {unknown[0]!r} (choose from all, none, {', '.join(Controls.names())})"
        )
    return Controls.only(names)


KEYS: dict[str, Validator] = {
    "target": _target,
    "trials": _int(1),
    "runs": _int(2),
    "seed": _int(0, 2**32 - 1),
    "workers": _int(1),
    "timeout": _float(positive=True),
    "threads": _int(1),
    "device": _choice(DEVICES),
    "atol": _float(positive=False),
    "rtol": _float(positive=False),
    "directions": _directions,
    "sampler": _sampler,
    "sampler_kwargs": _table,
    "pruner": _choice(PRUNERS),
    "pruner_kwargs": _table,
    "n_jobs": _n_jobs,
    "controls": _controls,
    "fail_fast": _bool,
    "storage": _text,
    "name": _text,
    "resume": _bool,
    "stale_after": _stale_after,
}
ALIASES = {"direction": "directions"}


def _normalise(raw: Mapping[str, Any], source: str | None) -> dict[str, tuple[Any, str]]:
    """Validate one layer's keys and values; returns key -> (value, where it was set).

    ``source`` names the file; None means command-line flags, named ``--flag`` in messages.
    """
    layer: dict[str, tuple[Any, str]] = {}
    for key, value in raw.items():
        name = ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
        where = f"--{key.replace('_', '-')}" if source is None else f"{source}: {key}"
        if name not in KEYS:
            raise ConfigError(f"{source or 'flags'}: unknown setting {key!r}")
        try:
            layer[name] = (KEYS[name](value), where)
        except ValueError as exc:
            raise ConfigError(f"{where} {exc}") from None
    return layer


def check_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Validate command-line flags outside a full plan (e.g. ``diff --atol``)."""
    given = {k: v for k, v in flags.items() if v is not None}
    return {key: value for key, (value, _where) in _normalise(given, None).items()}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _pyproject_layer(start: Path) -> dict[str, tuple[Any, str]]:
    path = find_pyproject(start)
    if path is None:
        return {}
    table = read_toml(path).get("tool", {}).get("repro-check", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: [tool.repro-check] must be a table")
    return _normalise(_anchor_target(table, path), f"{path} [tool.repro-check]")


def _anchor_target(table: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """A relative ``file.py:attr`` target in a config file is relative to that file's folder,
    so the check runs the same from any subfolder."""
    target = table.get("target")
    if not isinstance(target, str):
        return table
    location, sep, attr = target.rpartition(":")
    file_part = location if sep else target
    if not file_part.endswith(".py") or Path(file_part).is_absolute():
        return table
    anchored = str((path.parent / file_part).resolve())
    return {**table, "target": f"{anchored}{sep}{attr}" if sep else anchored}


def _config_layer(path: Path | None) -> dict[str, tuple[Any, str]]:
    if path is None:
        return {}
    data = read_toml(path)
    # A config file may hold the settings at top level or under [tool.repro-check].
    table = data.get("tool", {}).get("repro-check", data) if "tool" in data else data
    return _normalise(_anchor_target(table, path), str(path))


def merge_layers(
    flags: Mapping[str, Any], config_path: Path | None, start: Path
) -> dict[str, tuple[Any, str]]:
    """The merged settings (value, source) per key; flags whose value is None are not given."""
    merged = _pyproject_layer(start)
    merged.update(_config_layer(config_path))
    given = {k: v for k, v in flags.items() if v is not None and v != () and v != []}
    merged.update(_normalise(given, None))
    return merged


def _check_study(study: StudySettings, sources: Mapping[str, str]) -> None:
    if study.sampler == "grid" and "search_space" not in study.sampler_kwargs:
        raise ConfigError(
            "the grid sampler needs a search space: add sampler_kwargs.search_space "
            "(e.g. {x = [0, 1, 2]}) to the config"
        )
    if study.pruner == "percentile" and "percentile" not in study.pruner_kwargs:
        raise ConfigError("the percentile pruner needs pruner_kwargs.percentile in the config")
    if study.pruner == "threshold" and not {"lower", "upper"} & set(study.pruner_kwargs):
        raise ConfigError("the threshold pruner needs pruner_kwargs.lower or .upper in the config")
    if len(study.directions) > 1 and study.pruner != "none":
        raise ConfigError(
            f"{sources.get('pruner', 'pruner')}: Optuna cannot prune multi-objective studies"
        )


def build_plan(
    target: str | None,
    flags: Mapping[str, Any],
    config_path: Path | None = None,
    start: Path | None = None,
) -> CheckPlan:
    """Merge every layer into a validated ``CheckPlan``. Raises ``ConfigError``."""
    merged = merge_layers({**flags, "target": target}, config_path, start or Path.cwd())
    values = {key: value for key, (value, _source) in merged.items()}
    sources = {key: source for key, (_value, source) in merged.items()}
    if "target" not in values:
        raise ConfigError("no target given: pass MODULE:ATTR or FILE.py:ATTR")
    study_keys = ("trials", "directions", "sampler", "sampler_kwargs", "pruner", "pruner_kwargs")
    study = StudySettings(
        **{key: values[key] for key in study_keys if key in values},
        n_jobs=values.get("n_jobs", 1),
    )
    _check_study(study, sources)
    if "storage" in values and "name" not in values:
        raise ConfigError("--storage needs --name: the check's studies are named <name>/run-<k>")
    if values.get("resume") and "name" not in values:
        raise ConfigError("--resume needs --name (and --storage) to find the check to resume")
    if "name" in values and "storage" not in values:
        from repro_check.storage import DEFAULT_STORAGE

        values["storage"] = DEFAULT_STORAGE
    plan_keys = (
        "runs",
        "seed",
        "workers",
        "timeout",
        "threads",
        "device",
        "controls",
        "fail_fast",
        "storage",
        "name",
        "resume",
        "stale_after",
    )
    return CheckPlan(
        target=values["target"],
        study=study,
        tolerance=Tolerance(values.get("atol", 0.0), values.get("rtol", 0.0)),
        **{key: values[key] for key in plan_keys if key in values},
    )
