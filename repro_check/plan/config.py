"""Build a ``CheckPlan`` from four layers: defaults < pyproject < ``--config`` TOML < flags.

Every value is validated here, with the layer it came from in the message, so a typo in a config
file is a one-line exit-2 error before any process starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from repro_check.errors import ConfigError
from repro_check.plan.config_files import anchor_target, find_pyproject, read_toml, tool_table
from repro_check.plan.defaults import DEFAULT_STORAGE, default_controls
from repro_check.plan.inert import InertSettingError
from repro_check.plan.settings import (
    CHECK_KEYS,
    DEFAULT_TRIALS,
    DEVICES,
    DIRECTIONS,
    PRUNERS,
    SAMPLERS,
    STUDY_KEYS,
    CheckPlan,
    Controls,
    StudySettings,
    Tolerance,
)
from repro_check.plan.targets import MODULE_PREFIX, is_script, script_name
from repro_check.vocab import PRUNERS as PRUNER_CLASSES
from repro_check.vocab import Pruner, Sampler, sampler_spec

Validator = Callable[[Any], Any]


MAX_RUNS = 10_000
MAX_TRIALS = 1_000_000
MAX_WORKERS = 10_000
MAX_THREADS = 4_096
MAX_N_JOBS = 10_000
MAX_SECONDS = 10.0**7
"""Upper bounds of the counts and durations (about 116 days for ``timeout``/``stale_after``).

They keep a typo such as ``--runs 1000000000000`` from exhausting memory or running forever, and
they are below ``validate.MAX_COUNT``, so every report the CLI writes is one the validator reads.
"""

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters (C0, DEL, C1) and lone surrogates: never valid in a target or a name."""


def key_name(key: str) -> str:
    """A settings key as written in messages: bare when it is a plain name, else quoted."""
    return key if key.replace("-", "_").isidentifier() and len(key) <= 40 else shown(key, 40)


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line messages (a config value may be
    a 4,000-digit integer)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's str() digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _int(minimum: int, maximum: int | None = None) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {shown(value)}")
        if value < minimum:
            raise ValueError(f"must be >= {minimum}, got {shown(value)}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {maximum}, got {shown(value)}")
        return int(value)

    return check


def _n_jobs(value: Any) -> int:
    if value == -1 and not isinstance(value, bool):
        return -1
    return int(_int(1, MAX_N_JOBS)(value))


def _float(*, positive: bool, maximum: float | None = None) -> Validator:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {shown(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            number = math.inf
        too_big = maximum is not None and number > maximum
        if not math.isfinite(number) or number < 0 or (positive and number == 0) or too_big:
            bound = "> 0" if positive else ">= 0"
            if maximum is not None:
                bound += f" and <= {maximum:g}"
            raise ValueError(f"must be a finite number {bound}, got {shown(value)}")
        return number

    return check


def _stale_after(value: Any) -> float:
    from repro_check.plan.liveness import check_stale_after

    return check_stale_after(_float(positive=True)(value))


def _choice(options: tuple[str, ...]) -> Validator:
    def check(value: Any) -> str:
        name = str(value).lower().replace("_", "-")
        if name not in options:
            raise ValueError(f"unknown value {shown(value)} (choose from {', '.join(options)})")
        return str(name)

    return check


def _sampler(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a sampler name, got {shown(value)}")
    if ":" in value:  # a factory by import path, resolved in the worker
        return _clean(value)
    return str(_choice(SAMPLERS)(value))


def _directions(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"must be a direction or a list of them, got {shown(value)}")
    return tuple(_choice(DIRECTIONS)(item) for item in items)


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table of keyword arguments, got {shown(value)}")
    return {str(k): v for k, v in value.items()}


def _clean(value: str) -> str:
    """``value`` unless it holds a control character or a lone surrogate (which no module name,
    file name a worker can import, or study name needs, and which would reach the terminal or
    fail to encode)."""
    bad = _UNSAFE.search(value)
    if bad is not None:
        what = "a lone surrogate" if bad.group() >= "\ud800" else "a control character"
        raise ValueError(f"contains {what} ({bad.group()!r}) at position {bad.start()}")
    return value


def _target(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be 'module:attr' or 'file.py:attr', got {shown(value)}")
    return _clean(value.strip())


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {shown(value)}")
    return _clean(value.strip())


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {shown(value)}")
    return value


def _controls(value: Any) -> Controls:
    """ "all", "none", or control names (a list, or comma-separated)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"must be 'all', 'none' or a list of control names, got {shown(value)}")
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
            f"unknown control {shown(unknown[0])} "
            f"(choose from all, none, {', '.join(Controls.names())})"
        )
    return Controls.only(names)


def _args(value: Any) -> tuple[str, ...]:
    """The script's arguments: a list of strings (a bare string is one argument)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"must be a list of strings, got {shown(value)}")
    if len(items) > MAX_ARGS:
        raise ValueError(f"must hold at most {MAX_ARGS} arguments, got {len(items)}")
    return tuple(_clean(i) if i.strip() else i for i in items)


MAX_ARGS = 10_000


def _gpus(value: Any) -> str:
    """ "all", or GPU indices/UUIDs: a comma list or a TOML list; kept as one "0,1,3" string."""
    from repro_check.plan.gpu_request import parse_request

    if isinstance(value, list | tuple):
        if not all(
            isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in value
        ):
            raise ValueError(f"must be 'all' or a list of GPU indices, got {shown(value)}")
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError(f"must be 'all' or GPU indices such as 0,1,3, got {shown(value)}")
    return ",".join(parse_request(_clean(value)))


KEYS: dict[str, Validator] = {
    "target": _target,
    "trials": _int(1, MAX_TRIALS),
    "runs": _int(2, MAX_RUNS),
    "seed": _int(0, 2**32 - 1),
    "workers": _int(1, MAX_WORKERS),
    "timeout": _float(positive=True, maximum=MAX_SECONDS),
    "threads": _int(1, MAX_THREADS),
    "device": _choice(DEVICES),
    "gpus": _gpus,
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
    "args": _args,
    "resume_at": _int(1, MAX_TRIALS),
}
ALIASES = {"direction": "directions"}


def _normalise(raw: Mapping[str, Any], source: str | None) -> dict[str, tuple[Any, str]]:
    """Validate one layer's keys and values; returns key -> (value, where it was set).

    ``source`` names the file; None means command-line flags, named ``--flag`` in messages.
    """
    layer: dict[str, tuple[Any, str]] = {}
    for key, value in raw.items():
        name = ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
        flag = "target" if name == "target" else f"--{key.replace('_', '-')}"
        where = flag if source is None else f"{source}: {key_name(key)}"
        if name not in KEYS:
            raise ConfigError(f"{source or 'flags'}: unknown setting {shown(key)}")
        try:
            layer[name] = (KEYS[name](value), where)
        except ValueError as exc:
            raise ConfigError(f"{where} {exc}") from None
    return layer


def check_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Validate command-line flags outside a full plan (e.g. ``diff --atol``)."""
    given = {k: v for k, v in flags.items() if v is not None}
    return {key: value for key, (value, _where) in _normalise(given, None).items()}


def _pyproject_layer(start: Path) -> dict[str, tuple[Any, str]]:
    path = find_pyproject(start)
    if path is None:
        return {}
    table = tool_table(read_toml(path, "pyproject.toml"), path, {})
    return _normalise(anchor_target(table, path), f"{path} [tool.repro-check]")


def _config_layer(path: Path | None) -> dict[str, tuple[Any, str]]:
    if path is None:
        return {}
    data = read_toml(path)
    # A config file may hold the settings at top level or under [tool.repro-check].
    table = tool_table(data, path, data) if "tool" in data else data
    return _normalise(anchor_target(table, path), str(path))


def merge_layers(
    flags: Mapping[str, Any], config_path: Path | None, start: Path | None
) -> dict[str, tuple[Any, str]]:
    """The merged settings (value, source) per key; flags whose value is None are not given.
    ``start`` None skips the pyproject.toml layer."""
    merged = {} if start is None else _pyproject_layer(start)
    merged.update(_config_layer(config_path))
    given = {k: v for k, v in flags.items() if v is not None and v != () and v != []}
    merged.update(_normalise(given, None))
    return merged


_SIMPLE = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def _simple_types(annotation: Any) -> tuple[type, ...] | None:
    """The types a plain annotation (``int``, ``float | None``, ``Optional[str]``...) allows;
    None when it is anything else (a callable, a mapping...), which is then not checked here."""
    if isinstance(annotation, type):
        return (annotation,) if annotation in _SIMPLE.values() else None
    if not isinstance(annotation, str):
        return None
    text = annotation.replace(" ", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = f"{text[9:-1]}|None"
    names = text.split("|")
    if not all(name in _SIMPLE for name in names):
        return None
    return tuple(_SIMPLE[name] for name in names)


def _fits(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    return isinstance(value, allowed)


def _check_kwargs(
    kind: str, name: str, class_name: str, kwargs: Mapping[str, Any], source: str | None
) -> None:
    """Refuse, before any worker starts, keyword arguments the Optuna class does not take or
    whose plain type is wrong: otherwise every replicate would fail to build its study.
    ``source`` is where the table was set (``"file: sampler_kwargs"``), None for arguments."""
    table = source if source is not None and ": " in source else f"{kind}_kwargs"
    if kind == "sampler" and "seed" in kwargs:
        raise ConfigError(
            f"cannot build the study: {table}.seed is not allowed: the sampler gets --seed"
        )
    import inspect

    try:
        import optuna
    except ImportError:  # the worker reports the missing package
        return
    module = optuna.samplers if kind == "sampler" else optuna.pruners
    cls = getattr(module, class_name, None)
    if cls is None:  # an Optuna without this class: the worker says so
        return
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    for key, value in kwargs.items():
        where = f"{table}.{key_name(key)}"
        parameter = parameters.get(key)
        if parameter is None or parameter.kind not in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            accepted = ", ".join(n for n in parameters if n != "seed")
            raise ConfigError(
                f"cannot build the study: {where}: the {name} {kind} "
                f"({class_name}) takes no argument {shown(key, 40)} (it takes {accepted})"
            )
        allowed = _simple_types(parameter.annotation)
        if allowed is not None and not _fits(value, allowed):
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise ConfigError(
                f"cannot build the study: {where} = {shown(value)}: {class_name} expects {expected}"
            )


def _check_study(study: StudySettings, sources: Mapping[str, str]) -> None:
    spec = sampler_spec(study.sampler)
    if study.sampler_kwargs and spec is not None:
        sampler_class = spec.optuna_class
        where = sources.get("sampler_kwargs")
        _check_kwargs("sampler", study.sampler, sampler_class, study.sampler_kwargs, where)
    if study.pruner_kwargs:
        pruner_class = PRUNER_CLASSES[Pruner(study.pruner)]
        where = sources.get("pruner_kwargs")
        _check_kwargs("pruner", study.pruner, pruner_class, study.pruner_kwargs, where)
    if study.sampler == Sampler.GRID and "search_space" not in study.sampler_kwargs:
        raise ConfigError(
            "the grid sampler needs a search space: add sampler_kwargs.search_space "
            "(e.g. {x = [0, 1, 2]}) to the config"
        )
    if study.pruner == Pruner.PERCENTILE and "percentile" not in study.pruner_kwargs:
        raise ConfigError("the percentile pruner needs pruner_kwargs.percentile in the config")
    if study.pruner == Pruner.THRESHOLD and not {"lower", "upper"} & set(study.pruner_kwargs):
        raise ConfigError("the threshold pruner needs pruner_kwargs.lower or .upper in the config")
    if len(study.directions) > 1 and study.pruner != Pruner.NONE:
        raise ConfigError(
            f"{sources.get('pruner', 'pruner')}: Optuna cannot prune multi-objective studies"
        )


_SCRIPT_BUILT = ("directions", "sampler", "sampler_kwargs", "pruner", "pruner_kwargs", "n_jobs")
"""Study settings a script makes itself: a flag for one is refused, a config file's ignored."""


def _check_script(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """A script builds its own studies: a study flag would silently do nothing (it may well
    be the script's own ``--sampler``, typed before ``--``: the CLI then says so)."""
    for key in _SCRIPT_BUILT:
        where = sources.get(key, "")
        if key in values and where.startswith("--"):
            script = script_name(values["target"]).removeprefix(MODULE_PREFIX)
            raise InertSettingError(
                f"{where} does not apply to a script ({values['target']} builds its own "
                "studies); check the objective in repro-check's study as FILE.py:objective",
                "",
                key,
                script,
                flag=where,
            )


def _check_resume_at(
    values: Mapping[str, Any], sources: Mapping[str, str], cap: int | None = None
) -> None:
    """``--resume-at K`` stops each replicate after K trials and resumes it: 1 <= K < trials
    (for a script, its ``--trials`` cap, which it then needs: the trials each study ends at)."""
    at = values.get("resume_at")
    if at is None:
        return
    where = sources.get("resume_at", "--resume-at")
    script = is_script(values["target"])
    if script and cap is None:
        raise ConfigError(
            f"{where} on a script needs --trials N (1 <= K < N): each of the script's studies "
            "is stopped after K trials and resumed to end at N"
        )
    trials = cap if script and cap is not None else values.get("trials", DEFAULT_TRIALS)
    if at >= trials:
        raise ConfigError(
            f"{where} must be below the trials ({trials}): K trials run, then the study "
            f"resumes for the rest; got {at}"
        )
    if script and ("storage" in values or "name" in values):
        flag = sources.get("storage") or sources.get("name") or "--storage"
        raise ConfigError(
            f"{where} on a script resumes it in private copies of the script's own storages: "
            f"{flag} does not apply"
        )
    if values.get("resume"):
        raise ConfigError(
            f"{where} cannot be combined with --resume (which retakes a shared check's dead "
            "replicates)"
        )


def _pyproject_folder(pyproject: bool, start: Path | None) -> Path | None:
    """Where the nearest pyproject.toml is looked for: None leaves ``[tool.repro-check]`` out
    (the API, or a current folder that was removed)."""
    if not pyproject:
        return None
    try:
        return start or Path.cwd()
    except OSError:  # the current folder was removed: there is no pyproject to read
        return None


def _target_values(
    values: dict[str, Any], sources: Mapping[str, str], script: bool
) -> dict[str, Any]:
    """The settings that apply to this kind of target: a script builds its own study (the
    study settings are refused or dropped); an objective takes no script arguments."""
    if script:
        _check_script(values, sources)
        return {k: v for k, v in values.items() if k not in _SCRIPT_BUILT}
    if values.get("args"):
        raise ConfigError(
            f"{sources['args']}: script arguments need a script target (train.py or -m pkg.mod), "
            f"not the objective {values['target']}"
        )
    return values


def _check_storage(values: Mapping[str, Any]) -> None:
    """A shared check is found by its name: --storage and --resume need --name."""
    if "storage" in values and "name" not in values:
        raise ConfigError("--storage needs --name: the check's studies are named <name>/run-<k>")
    if values.get("resume") and "name" not in values:
        raise ConfigError("--resume needs --name (and --storage) to find the check to resume")


def build_plan(
    target: str | None,
    flags: Mapping[str, Any],
    config_path: Path | None = None,
    start: Path | None = None,
    *,
    pyproject: bool = True,
) -> CheckPlan:
    """Merge every layer into a validated ``CheckPlan``. Raises ``ConfigError``.

    ``pyproject`` False leaves out ``[tool.repro-check]`` (the Python API: its settings are its
    arguments); otherwise the nearest pyproject.toml at or above ``start`` (the current folder)
    applies.
    """
    merged = merge_layers(
        {**flags, "target": target}, config_path, _pyproject_folder(pyproject, start)
    )
    values = {key: value for key, (value, _source) in merged.items()}
    sources = {key: source for key, (_value, source) in merged.items()}
    if "target" not in values:
        raise ConfigError("no target given: pass a script (train.py, -m pkg.mod) or MODULE:ATTR")
    script = is_script(values["target"])
    values = _target_values(values, sources, script)
    cap = values.pop("trials", None) if script else None
    study = StudySettings(**{key: values[key] for key in STUDY_KEYS if key in values})
    _check_study(study, sources)
    _check_storage(values)
    _check_resume_at(values, sources, cap)
    if "name" in values and "storage" not in values:
        values["storage"] = DEFAULT_STORAGE
    if "controls" not in values:
        values["controls"] = default_controls(values["target"])
    return CheckPlan(
        target=values["target"],
        study=study,
        cap=cap,
        tolerance=Tolerance(values.get("atol", 0.0), values.get("rtol", 0.0)),
        **{key: values[key] for key in CHECK_KEYS if key in values},
    )
