"""Validate saved reports: untrusted input, so JSON only, every field checked, one-line errors.

Nothing from a saved report is ever evaluated, imported or unpickled; a report that passes here
only becomes plain value objects (``RunReport.from_dict``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from repro_check.errors import ReproCheckError
from repro_check.report import SCHEMA_VERSION

MAX_REPORT_BYTES = 1 << 30
MAX_COUNT = 10**9
"""Bounds for counts (runs, trials, trial numbers): above this a report is hostile or broken."""


class ReportError(ReproCheckError):
    """A saved report that cannot be used: missing, not JSON, wrong schema, wrong types."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ReportError(f"no such file: {path}") from None
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror}") from None
    if path.is_dir():
        raise ReportError(f"{path} is a directory, not a report")
    if size > MAX_REPORT_BYTES:
        raise ReportError(f"{path}: report too large ({size} bytes)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a JSON report (not UTF-8 text)") from None
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ReportError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # int with too many digits, NaN literal
        raise ReportError(f"{path}: not a usable JSON report ({exc})") from None


class _Checker:
    """Walks a decoded report; the first problem raises a ReportError naming its path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, expected: str, value: Any) -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ReportError(f"{self.source}: {where}: expected {expected}, got {shown}")

    def obj(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "an object", value)
        return value  # type: ignore[no-any-return]

    def lst(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(where, "a list", value)
        return value  # type: ignore[no-any-return]

    def count(self, value: Any, where: str, minimum: int = 0) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (minimum <= value <= MAX_COUNT)
        ):
            self.fail(where, f"an integer from {minimum} to {MAX_COUNT}", value)

    def number(self, value: Any, where: str, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, "a number", value)
        if isinstance(value, int) and abs(value) > 2**1023:
            self.fail(where, "a number in float range", value)
        if isinstance(value, float) and math.isnan(value):
            self.fail(where, "a number", value)

    def text(self, value: Any, where: str, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str):
            self.fail(where, "a string", value)

    def params(self, value: Any, where: str) -> None:
        for key, item in self.obj(value, where).items():
            if isinstance(item, dict):
                if set(item) != {"$float"}:
                    self.fail(f"{where}.{key}", "a parameter value", item)
                self.number(item["$float"], f"{where}.{key}")
            elif isinstance(item, list):
                self.fail(f"{where}.{key}", "a parameter value", item)

    def trial(self, value: Any, where: str) -> None:
        trial = self.obj(value, where)
        self.count(trial.get("number"), f"{where}.number")
        if trial.get("state") not in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"):
            self.fail(f"{where}.state", "COMPLETE, PRUNED or FAIL", trial.get("state"))
        self.params(trial.get("params", {}), f"{where}.params")
        values = trial.get("values")
        if values is not None:
            for i, item in enumerate(self.lst(values, f"{where}.values")):
                self.number(item, f"{where}.values[{i}]")
        if trial.get("state") == "COMPLETE" and not values:
            self.fail(f"{where}.values", "the values of a COMPLETE trial", values)
        for step, item in self.obj(
            trial.get("intermediate_values", {}), f"{where}.intermediate_values"
        ).items():
            if not step.lstrip("-").isdigit() or len(step) > 12:
                self.fail(f"{where}.intermediate_values", "integer steps", step)
            self.number(item, f"{where}.intermediate_values.{step}")
        self.obj(trial.get("user_attrs", {}), f"{where}.user_attrs")
        self.text(trial.get("error"), f"{where}.error", nullable=True)
        self.number(trial.get("duration_s"), f"{where}.duration_s", nullable=True)

    def run(self, value: Any, where: str) -> None:
        run = self.obj(value, where)
        self.count(run.get("index"), f"{where}.index")
        self.count(run.get("seed"), f"{where}.seed")
        if run.get("status") not in ("ok", "crashed", "timeout", "error", "cancelled"):
            self.fail(
                f"{where}.status", "ok, crashed, timeout, error or cancelled", run.get("status")
            )
        self.text(run.get("error"), f"{where}.error", nullable=True)
        directions = self.lst(run.get("directions", ["minimize"]), f"{where}.directions")
        for item in directions:
            if item not in ("minimize", "maximize"):
                self.fail(f"{where}.directions", "minimize or maximize", item)
        self.number(run.get("wall_s"), f"{where}.wall_s", nullable=True)
        for i, note in enumerate(self.lst(run.get("notes", []), f"{where}.notes")):
            self.text(note, f"{where}.notes[{i}]")
        numbers: set[int] = set()
        for i, trial in enumerate(self.lst(run.get("trials"), f"{where}.trials")):
            self.trial(trial, f"{where}.trials[{i}]")
            if trial["number"] in numbers:
                self.fail(
                    f"{where}.trials[{i}].number", "a trial number seen once", trial["number"]
                )
            numbers.add(trial["number"])

    def environment(self, value: Any, where: str) -> None:
        env = self.obj(value, where)
        for key in ("python", "implementation", "platform", "machine", "cpu"):
            self.text(env.get(key), f"{where}.{key}", nullable=True)
        for key in ("packages", "env"):
            for name, item in self.obj(env.get(key) or {}, f"{where}.{key}").items():
                self.text(item, f"{where}.{key}.{name}")
        torch = env.get("torch")
        if torch is not None:
            torch = self.obj(torch, f"{where}.torch")
            for i, gpu in enumerate(self.lst(torch.get("gpus") or [], f"{where}.torch.gpus")):
                self.text(gpu, f"{where}.torch.gpus[{i}]")

    def settings(self, value: Any, where: str) -> None:
        settings = self.obj(value, where)
        self.count(settings.get("runs"), f"{where}.runs", minimum=1)
        self.count(settings.get("seed"), f"{where}.seed")
        self.count(settings.get("trials"), f"{where}.trials", minimum=1)
        self.count(settings.get("n_jobs"), f"{where}.n_jobs", minimum=-1)
        self.count(settings.get("threads", 1), f"{where}.threads", minimum=1)
        self.text(settings.get("device"), f"{where}.device")
        self.text(settings.get("sampler"), f"{where}.sampler")
        self.text(settings.get("pruner"), f"{where}.pruner")
        directions = self.lst(settings.get("directions"), f"{where}.directions")
        if not directions or any(d not in ("minimize", "maximize") for d in directions):
            self.fail(f"{where}.directions", "a list of minimize/maximize", directions)
        self.obj(settings.get("sampler_kwargs", {}), f"{where}.sampler_kwargs")
        self.obj(settings.get("pruner_kwargs", {}), f"{where}.pruner_kwargs")
        tolerance = self.obj(settings.get("tolerance", {}), f"{where}.tolerance")
        for key in ("atol", "rtol"):
            self.number(tolerance.get(key, 0.0), f"{where}.tolerance.{key}")
        for key, flag in self.obj(settings.get("controls", {}), f"{where}.controls").items():
            if not isinstance(flag, bool):
                self.fail(f"{where}.controls.{key}", "true or false", flag)

    def run_report(self, value: Any, where: str = "report") -> None:
        data = self.obj(value, where)
        self.text(data.get("target"), f"{where}.target")
        self.settings(data.get("settings"), f"{where}.settings")
        runs = self.lst(data.get("runs"), f"{where}.runs")
        if not runs:
            self.fail(f"{where}.runs", "at least one run", runs)
        for i, run in enumerate(runs):
            self.run(run, f"{where}.runs[{i}]")
        self.environment(data.get("environment") or {}, f"{where}.environment")
        if not isinstance(data.get("stopped_early", False), bool):
            self.fail(f"{where}.stopped_early", "true or false", data.get("stopped_early"))
        self.count(data.get("awaiting", 0), f"{where}.awaiting")
        for i, note in enumerate(self.lst(data.get("notes", []), f"{where}.notes")):
            self.text(note, f"{where}.notes[{i}]")


def _header(data: Any, source: str, commands: tuple[str, ...]) -> str:
    if not isinstance(data, dict):
        raise ReportError(f"{source}: not a repro-check report (expected a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ReportError(
            f"{source}: unknown schema_version {version!r} (this repro-check reads "
            f"{SCHEMA_VERSION})"
        )
    command = data.get("command")
    if command not in commands:
        raise ReportError(
            f"{source}: a report of {command!r}, expected one of {', '.join(commands)}"
        )
    return str(command)


def _safely(build: Callable[[], Any], source: str) -> Any:
    try:
        return build()
    except ReportError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as exc:
        raise ReportError(f"{source}: malformed report ({type(exc).__name__}: {exc})") from None


def load_run_report(path: Path) -> Any:
    """A validated ``RunReport`` from a saved ``run`` report (also what baselines are)."""
    from repro_check.report import RunReport

    source = str(path)
    data = read_json(path)
    _header(data, source, ("run",))
    _Checker(source).run_report(data)
    return _safely(lambda: RunReport.from_dict(data), source)


def load_any_report(path: Path) -> Any:
    """A validated ``RunReport`` or ``CompareReport`` (for ``repro-check report``)."""
    from repro_check.conditions import CompareReport
    from repro_check.report import RunReport

    source = str(path)
    data = read_json(path)
    command = _header(data, source, ("run", "compare"))
    checker = _Checker(source)
    if command == "run":
        checker.run_report(data)
        return _safely(lambda: RunReport.from_dict(data), source)
    conditions = checker.obj(data.get("conditions"), "report.conditions")
    if not conditions:
        checker.fail("report.conditions", "at least one condition", conditions)
    for name, condition in conditions.items():
        if name not in ("fixed_seed", "seed_sweep", "uncontrolled"):
            checker.fail("report.conditions", "fixed_seed, seed_sweep or uncontrolled", name)
        checker.run_report(condition, f"report.conditions.{name}")
    return _safely(lambda: CompareReport.from_dict(data), source)
