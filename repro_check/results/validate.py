"""Validate saved reports: untrusted input, so JSON only, every field checked, one-line errors.

A saved report (a baseline is one) is a file anyone can edit, so nothing in it is trusted:

1. reading is bounded: only regular files (never a FIFO, device or directory), at most
   ``MAX_REPORT_BYTES``, strings of at most ``MAX_TEXT`` characters, free-form values (trials'
   user and system attributes and distributions, sampler kwargs, the environment) nested at
   most ``MAX_DEPTH`` levels, no lone surrogates;
2. every field is checked while the file is decoded into the typed records of
   ``results.saved`` (msgspec), including fields that are never read; the published JSON Schema
   (``results/report.schema.json`` in the package) is generated from those types;
3. the semantic rules a live run obeys are checked on top: settings valid exactly as the command
   line's flags are, unique run indices, every finished run holding trials ``0..trials-1`` once
   (objective mode), the mode matching the target, and in script mode every run's ``studies``
   well formed (a finished run made at least one; each study's trial numbers unique; no
   ``0..M-1`` rule, since a script may ask for a trial and never tell it).

Nothing from a saved report is ever evaluated, imported or unpickled; a report that passes here
only becomes plain value objects (``RunReport.from_saved``), and the verdict is recomputed with
the *command's* tolerance, never the file's.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from repro_check.bounds import MAX_COUNT, MAX_DEPTH, MAX_TEXT
from repro_check.plan.targets import is_script
from repro_check.results import saved
from repro_check.results.records import stopped_note
from repro_check.results.report import READABLE_SCHEMA_VERSIONS
from repro_check.results.report_file import MAX_REPORT_BYTES, ReportError, read_bounded
from repro_check.results.saved_errors import SHOW, SavedReportError, printable
from repro_check.vocab import Condition, RunStatus

if TYPE_CHECKING:
    from repro_check.plan.settings import Tolerance
    from repro_check.results.compare_report import CompareReport
    from repro_check.results.report import RunReport

__all__ = ["MAX_COUNT", "MAX_DEPTH", "MAX_REPORT_BYTES", "MAX_TEXT", "ReportError"]
SCHEMA_RESOURCE = ("results", "report.schema.json")
"""Beside this module, in the wheel (a path inside the ``repro_check`` package); generated
from ``results.saved`` (``saved_schema.report_schema``)."""


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_AT_BYTE = re.compile(r"\(byte (\d+)\)")


def _lone_surrogate(text: str, raw: bytes | bytearray) -> bool:
    """msgspec refused a ``\\ud800`` escape not followed by its pair (it says "surrogate", or
    "end of hex escape" at the byte after it)."""
    if "surrogate" in text:
        return True
    at = _AT_BYTE.search(text)
    if "hex escape" not in text or at is None:
        return False
    end = int(at[1])
    return _SURROGATE_ESCAPE.search(raw, max(0, end - 16), end + 1) is not None


def _decode_error(exc: Exception, shown: str, raw: bytes | bytearray) -> ReportError:
    """msgspec's refusal of text that is not JSON at all, as one line."""
    text = str(exc)
    if isinstance(exc, RecursionError):
        return ReportError(f"{shown}: JSON nested too deeply")
    if _lone_surrogate(text, raw):
        return ReportError(f"{shown}: a string with a lone surrogate (not valid Unicode)")
    if "UTF-8" in text:
        return ReportError(f"{shown}: not a JSON report (not UTF-8 text)")
    if "out of range" in text:
        return ReportError(f"{shown}: not a usable JSON report ({text.split(' - at')[0]})")
    return ReportError(f"{shown}: not valid JSON ({text})")


def _decode(raw: bytes | bytearray, kind: Any, shown: str) -> Any:
    """``raw`` decoded as ``kind`` (a ``saved`` type): bad JSON and wrong fields are one line."""
    try:
        return saved.decode(raw, kind) if kind is not saved.Header else _header_of(raw)
    except SavedReportError as exc:
        raise ReportError(f"{shown}: {exc}") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _decode_error(exc, shown, raw) from None
    except MemoryError:
        raise ReportError(f"{shown}: report too large to read") from None


def _header_of(raw: bytes | bytearray) -> saved.Header:
    try:
        return msgspec.json.decode(raw, type=saved.Header)
    except msgspec.ValidationError as exc:
        if "Expected `object`" in str(exc):
            raise SavedReportError("not a repro-check report (expected a JSON object)") from None
        raise msgspec.DecodeError(str(exc)) from None


def _walk(value: Any, where: str, source: str, depth_limit: int | None) -> None:
    """Check a decoded value without recursion: string lengths, lone surrogates, nesting depth
    (``depth_limit``; None: no limit, for the whole report, whose shape the schema fixes)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, where)]
    while stack:
        item, depth, at = stack.pop()
        if isinstance(item, str):
            _check_text(item, at, source)
        elif isinstance(item, dict | list):
            if depth_limit is not None and depth >= depth_limit:
                raise ReportError(
                    f"{source}: {printable(at)}: nested deeper than {depth_limit} levels"
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key, at, source)
                    stack.append((child, depth + 1, f"{at}.{key}"[:200]))
            else:
                stack.extend((child, depth + 1, f"{at}[{i}]"[:200]) for i, child in enumerate(item))


def _check_text(text: str, where: str, source: str) -> None:
    if len(text) > MAX_TEXT:
        raise ReportError(
            f"{source}: {printable(where)}: a string of {len(text)} characters (at most {MAX_TEXT})"
        )


def report_schema() -> dict[str, Any]:
    """The published JSON Schema of saved reports (the shipped file, generated from the types)."""
    from importlib import resources

    text = resources.files("repro_check").joinpath(*SCHEMA_RESOURCE).read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


FREE_TRIAL_KEYS = ("user_attrs", "distributions", "system_attrs")
"""A trial's free-form values (objects of anything JSON holds): bounded before they are read.
``distributions`` and ``system_attrs`` are absent from reports saved before they were recorded
(read as not recorded: ``records.comparable_runs``)."""


def _free_form(data: saved.RunReport, where: str, source: str) -> None:
    """Bound the values the types leave open before anything recurses into them, and check
    the known fields of the parts kept whole (the environment, each run's GPU)."""
    settings = data.settings
    _walk(settings.sampler_kwargs, f"{where}.settings.sampler_kwargs", source, MAX_DEPTH)
    _walk(settings.pruner_kwargs, f"{where}.settings.pruner_kwargs", source, MAX_DEPTH)
    _walk(data.environment, f"{where}.environment", source, MAX_DEPTH)
    _known(data.environment, saved.Environment, f"{where}.environment", source)
    for i, run in enumerate(data.runs):
        if run.gpu is not None:
            _known(run.gpu, saved.Gpu, f"{where}.runs[{i}].gpu", source)
        lists = [(f"{where}.runs[{i}].trials", run.trials)]
        for k, study in enumerate(run.studies or ()):
            at = f"{where}.runs[{i}].studies[{k}]"
            seed = study.sampler.seed
            if seed is not None and not -(2**63) <= seed < 2**64:
                raise ReportError(
                    f"{source}: {at}.sampler.seed: expected {saved.SAMPLER_SEED}, got {seed}"
                )
            if study.user_attrs:
                _walk(study.user_attrs, f"{at}.user_attrs", source, MAX_DEPTH)
            if study.trials is not None:
                lists.append((f"{at}.trials", study.trials))
        for at, trials in lists:
            for j, trial in enumerate(trials):
                if trial.user_attrs or trial.distributions or trial.system_attrs:
                    _free_trial(trial, f"{at}[{j}]", source)


def _free_trial(trial: saved.Trial, at: str, source: str) -> None:
    for key in FREE_TRIAL_KEYS:
        attrs = getattr(trial, key)
        if attrs:
            _walk(attrs, f"{at}.{key}", source, MAX_DEPTH)


def _known(value: Any, kind: Any, where: str, source: str) -> None:
    try:
        saved.check(value, kind, where)
    except SavedReportError as exc:
        raise ReportError(f"{source}: {exc}") from None


SETTING_KEYS = (
    "runs",
    "trials",
    "seed",
    "threads",
    "device",
    "directions",
    "sampler",
    "pruner",
    "sampler_kwargs",
    "pruner_kwargs",
    "n_jobs",
    "fail_fast",
)
NULLABLE_SETTING_KEYS = (
    "workers",
    "timeout",
    "storage",
    "name",
    "stale_after",
    "resume_at",
    "gpus",
)
SCRIPT_SETTING_KEYS = ("args", "cap")
"""A script's own settings: its arguments and ``--trials`` cap (empty/null for an objective)."""


def _settings(wire: saved.Settings, where: str, source: str, script: bool) -> None:
    """Saved settings are valid exactly as the command line's flags must be."""
    from repro_check.plan.config import KEYS

    settings = msgspec.to_builtins(wire)
    _nulls(settings, where, source, script)
    checks = [(key, settings[key]) for key in SETTING_KEYS if settings.get(key) is not None]
    checks += [(k, settings[k]) for k in NULLABLE_SETTING_KEYS if settings.get(k) is not None]
    checks += [(k, v) for k, v in settings["tolerance"].items()]
    if "args" in settings:
        checks.append(("args", settings["args"]))
    if settings.get("cap") is not None:
        checks.append(("cap", settings["cap"]))
    for key, value in checks:
        try:
            KEYS["trials" if key == "cap" else key](value)  # --trials is a script's cap
        except ValueError as exc:
            at = f"tolerance.{key}" if key in ("atol", "rtol") else key
            raise ReportError(f"{source}: {where}.settings.{at} {exc}") from None
    if not script and (settings.get("args") or settings.get("cap") is not None):
        key = "args" if settings.get("args") else "cap"
        raise ReportError(
            f"{source}: {where}.settings.{key}: only a script has "
            + ("arguments" if key == "args" else "a cap (--trials)")
            + ", and this is an objective-mode report"
        )


def _nulls(settings: dict[str, Any], where: str, source: str, script: bool) -> None:
    """Null study settings only in a script's report (its studies record their own), and a
    null seed only where no control would have handed it to the code."""
    from repro_check.plan.settings import SCRIPT_OWN_SETTINGS, Controls

    if not script:
        for key in ("seed", *SCRIPT_OWN_SETTINGS):
            if settings.get(key) is None:
                raise ReportError(
                    f"{source}: {where}.settings.{key}: null, but only a script's report "
                    "leaves it out, and this is an objective-mode report"
                )
    nulls = [key for key in SCRIPT_OWN_SETTINGS if settings.get(key) is None]
    if script and nulls and len(nulls) < len(SCRIPT_OWN_SETTINGS):  # written whole, or all null
        given = next(key for key in SCRIPT_OWN_SETTINGS if key not in nulls)
        raise ReportError(
            f"{source}: {where}.settings.{nulls[0]}: null while settings.{given} is set; a "
            "script's report leaves all of its study settings out (an older one writes all)"
        )
    if settings.get("seed") is None and Controls.from_dict(settings["controls"]).take_seed:
        raise ReportError(
            f"{source}: {where}.settings.seed: null, but the controls hand a seed to the code"
        )


def _mode(data: saved.RunReport, where: str, source: str) -> bool:
    """True for a script-mode report. A version 1 file predates script mode (its bare
    ``file.py`` meant ``file.py:objective``); from version 2 the mode must match the target, as it
    does in a live check (``train.py`` and ``-m pkg.mod`` are scripts, ``file.py:attr`` not)."""
    mode = None if data.mode is msgspec.UNSET else data.mode
    if data.schema_version < 2:
        if mode not in (None, "objective"):
            raise ReportError(
                f"{source}: {where}.mode: {SHOW.repr(mode)} in a schema_version 1 report "
                "(script mode came with schema_version 2)"
            )
        return False
    if mode is None:
        raise ReportError(f"{source}: {where}.mode: missing")
    script = is_script(data.target)
    if (mode == "script") != script:
        kind = "a script, run whole" if script else "an objective"
        raise ReportError(
            f"{source}: {where}.mode: {SHOW.repr(mode)}, but the target "
            f"{printable(SHOW.repr(data.target))} is {kind}"
        )
    return script


def _trial_list(
    trials: list[saved.Trial], directions: Sequence[str], at: str, source: str, limit: int | None
) -> int:
    """One study's trials: unique numbers (below ``limit`` when given), a COMPLETE trial with
    one value per direction. Returns how many (their numbers are then distinct)."""
    numbers = [trial.number for trial in trials]
    unique = set(numbers)
    if len(unique) != len(numbers) or (limit is not None and numbers and max(numbers) >= limit):
        _first_bad_number(numbers, at, source, limit)
    wanted = len(directions)
    for j, trial in enumerate(trials):
        values = trial.values
        if trial.state == "COMPLETE" and (not values or len(values) != wanted):
            raise ReportError(
                f"{source}: {at}[{j}].values: a COMPLETE trial needs "
                f"{wanted} value(s), got {SHOW.repr(values)}"
            )
    return len(numbers)


def _first_bad_number(numbers: list[int], at: str, source: str, limit: int | None) -> None:
    """The first trial number seen twice, or not below ``limit``: the error names it."""
    seen: set[int] = set()
    for j, number in enumerate(numbers):
        if number in seen or (limit is not None and number >= limit):
            raise ReportError(
                f"{source}: {at}[{j}].number: trial {number} "
                + ("appears twice" if number in seen else f"of a {limit}-trial study")
            )
        seen.add(number)


def _script_run(run: saved.Run, at: str, source: str) -> None:
    """A script run: every study the script made, in order; the first one's trials are the
    run's ``trials`` (its own ``trials`` null), the others' in their ``trials``."""
    studies = run.studies
    if isinstance(studies, msgspec.UnsetType):
        raise ReportError(
            f"{source}: {at}.studies: missing (a script report lists each run's studies)"
        )
    if run.status == RunStatus.OK.value and not studies:
        raise ReportError(
            f"{source}: {at}.studies: a finished script run created at least one study; "
            "this one lists none"
        )
    if not studies:
        if run.trials:
            raise ReportError(
                f"{source}: {at}.trials: {len(run.trials)} trial(s), but the run lists no study"
            )
        return
    for k, study in enumerate(studies):
        if k == 0 and study.trials is not None:
            raise ReportError(
                f"{source}: {at}.studies[0].trials: expected null (the first study's trials "
                "are the run's trials)"
            )
        if k > 0 and study.trials is None:
            raise ReportError(f"{source}: {at}.studies[{k}].trials: expected a list of trials")
    first = list(studies[0].directions)
    if list(run.directions) != first:
        raise ReportError(f"{source}: {at}.directions: not its first study's directions")
    _trial_list(run.trials, first, f"{at}.trials", source, None)
    for k, study in enumerate(studies[1:], start=1):
        directions = list(study.directions)
        _trial_list(study.trials or [], directions, f"{at}.studies[{k}].trials", source, None)


def _objective_run(run: saved.Run, at: str, source: str, settings: saved.Settings) -> None:
    """An objective-mode run: the settings' directions, one study, and when finished trials
    ``0..trials-1`` exactly once (or fewer, when its note says ``Study.stop`` ended it)."""
    trials = settings.trials
    assert trials is not None and settings.directions is not None  # _settings checked
    directions = list(settings.directions)
    if list(run.directions) != directions:
        raise ReportError(f"{source}: {at}.directions: not the settings' directions")
    described = run.studies or []
    if len(described) > 1:
        raise ReportError(
            f"{source}: {at}.studies: an objective-mode run is one study, not {len(described)}"
        )
    if described and described[0].trials is not None:
        raise ReportError(
            f"{source}: {at}.studies[0].trials: expected null (an objective-mode run's "
            "trials are the run's trials)"
        )
    count = _trial_list(run.trials, directions, f"{at}.trials", source, trials)
    finished = run.status == RunStatus.OK.value
    stopped = finished and stopped_note(count, trials) in run.notes
    if stopped and 0 < count < trials and {t.number for t in run.trials} == set(range(count)):
        return  # Study.stop ended it early, as its note says: a live run may do that
    if finished and count != trials:  # numbers are unique and below ``trials``: all of them
        raise ReportError(
            f"{source}: {at}.trials: a finished run holds trials 0..{trials - 1} exactly "
            f"once; this one holds {count} trial(s)"
        )


def _semantics(data: saved.RunReport, where: str, source: str, same_seed: bool) -> None:
    """The rules a live run obeys, so that a recomputed verdict means what a live one does."""
    settings = data.settings
    script = _mode(data, where, source)
    _settings(settings, where, source, script)
    planned = settings.runs
    seen: set[int] = set()
    for i, run in enumerate(data.runs):
        at = f"{where}.runs[{i}]"
        index = run.index
        if index in seen:
            raise ReportError(f"{source}: {at}.index: run {index} appears twice")
        seen.add(index)
        if index >= planned:
            raise ReportError(f"{source}: {at}.index: run {index}, but settings.runs is {planned}")
        if same_seed and settings.seed is not None and run.seed != settings.seed:
            raise ReportError(
                f"{source}: {at}.seed: {run.seed}, but every replicate gets settings.seed "
                f"{settings.seed}"
            )
        if script:
            _script_run(run, at, source)
        else:
            _objective_run(run, at, source, settings)
    if len(data.runs) + data.awaiting > planned:
        raise ReportError(
            f"{source}: {where}: {len(data.runs)} runs and {data.awaiting} awaiting, but "
            f"settings.runs is {planned}"
        )


def _resume(data: saved.RunReport, source: str) -> None:
    """``run --resume-at``: the resumed runs obey the rules of the others, at the settings' K."""
    resume = data.resume
    settings = data.settings
    if resume is None:
        if settings.resume_at is not None:
            raise ReportError(f"{source}: settings.resume_at is set but the report has no resume")
        return
    # a script's studies end at its --trials cap (its settings.trials is null: not what ran)
    at, trials = resume.at, (settings.cap if settings.trials is None else settings.trials)
    if trials is None or at != settings.resume_at or not 1 <= at < trials:
        raise ReportError(
            f"{source}: report.resume.at: {at}, but settings.resume_at is "
            f"{SHOW.repr(settings.resume_at)} of a {trials}-trial study"
        )
    resumed = msgspec.structs.replace(data, runs=resume.runs, awaiting=0)
    _free_form(resumed, "report.resume", source)
    _semantics(resumed, "report.resume", source, same_seed=True)


def _header(raw: bytes | bytearray, source: str, commands: tuple[str, ...]) -> str:
    header: saved.Header = _decode(raw, saved.Header, source)
    version = header.schema_version
    if type(version) is not int or version not in READABLE_SCHEMA_VERSIONS:
        readable = " and ".join(map(str, READABLE_SCHEMA_VERSIONS))
        raise ReportError(
            f"{source}: unknown schema_version {SHOW.repr(version)} (this repro-check reads "
            f"{readable})"
        )
    command = header.command
    if command not in commands:
        raise ReportError(
            f"{source}: a report of {SHOW.repr(command)}, expected one of {', '.join(commands)}"
        )
    return str(command)


def _safely(build: Callable[[], Any], source: str) -> Any:
    try:
        return build()
    except ReportError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as exc:
        raise ReportError(f"{source}: malformed report ({type(exc).__name__}: {exc})") from None
    except RecursionError:
        raise ReportError(f"{source}: report nested too deeply") from None


def _exact() -> Tolerance:
    from repro_check.plan.settings import Tolerance

    return Tolerance()


def checked(
    raw: bytes | bytearray, source: str, commands: tuple[str, ...] = ("run",)
) -> saved.RunReport | saved.CompareReport:
    """``raw`` decoded into the typed records, every check passed. Raises ``ReportError``."""
    command = _header(raw, source, commands)
    if command == "run":
        report: saved.RunReport = _decode(raw, saved.RunReport, source)
        _free_form(report, "report", source)
        _semantics(report, "report", source, same_seed=True)
        _resume(report, source)
        return report
    compared: saved.CompareReport = _decode(raw, saved.CompareReport, source)
    for name, condition in compared.conditions.items():
        where = f"report.conditions.{name}"
        _free_form(condition, where, source)
        _semantics(condition, where, source, same_seed=name != Condition.SEED_SWEEP.value)
    return compared


def check_report_data(data: Any, source: str, commands: tuple[str, ...] = ("run",)) -> str:
    """Every check on a report given as plain JSON values; returns its command."""
    try:
        raw = saved.encode_plain(data)
    except (TypeError, ValueError) as exc:  # not JSON values, or a NaN msgspec would null
        raise ReportError(f"{source}: not a JSON report ({exc})") from None
    return checked(raw, source, commands).command


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while a report is read: decoding makes millions of
    objects and no cycles, and each collection would walk all of them again (a third of the
    time of a large report)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # what was read is long-lived and acyclic (refcounting frees it): out of the collector's
        # sight, or its first full collection walks every record once more (0.6 s of `report`
        # at 2 x 450,000 trials). gc.freeze takes every object alive now, so cyclic garbage
        # left from before is never collected: a bounded cost for the one-shot commands that
        # read reports (`report`, `diff`, `run --baseline`), the only callers.
        gc.freeze()
        if enabled:
            gc.enable()


def load_run_report(path: Path, tolerance: Tolerance | None = None) -> RunReport:
    """A validated ``RunReport`` from a saved ``run`` report (also what baselines are), its
    verdict recomputed with ``tolerance`` (the command's; exact when None), never the file's."""
    return load_run_reports([path], tolerance)[0]


def load_run_reports(paths: Sequence[Path], tolerance: Tolerance | None = None) -> list[RunReport]:
    """``load_run_report`` of each path; equal trials across them share one record (``diff``
    of a report with itself, or with a rerun of it, builds one report's records)."""
    from repro_check.results.report import RunReport
    from repro_check.results.trial_record import TrialRecord

    tol = tolerance or _exact()
    interned: dict[bytes, TrialRecord] = {}
    loaded = []
    with _no_collection():
        for path in paths:
            source = printable(str(path), 1000)
            wire = checked(read_bounded(path), source, ("run",))
            assert isinstance(wire, saved.RunReport)
            loaded.append(
                _safely(functools.partial(RunReport.from_saved, wire, tol, interned), source)
            )
            del wire  # its trials are records now
    return loaded


def load_any_report(path: Path, tolerance: Tolerance | None = None) -> RunReport | CompareReport:
    """A validated ``RunReport`` or ``CompareReport`` (for ``repro-check report``)."""
    source = printable(str(path), 1000)
    with _no_collection():
        wire = checked(read_bounded(path), source, ("run", "compare"))
        return _build_any(wire, source, tolerance or _exact())


def _build_any(
    wire: saved.RunReport | saved.CompareReport, source: str, tol: Tolerance
) -> RunReport | CompareReport:
    from repro_check.results.compare_report import CompareReport
    from repro_check.results.report import RunReport

    if isinstance(wire, saved.RunReport):
        run = wire
        return _safely(lambda: RunReport.from_saved(run, tolerance=tol), source)  # type: ignore[no-any-return]
    compared = wire

    def build() -> CompareReport:
        conditions: dict[str, RunReport] = {
            name: RunReport.from_saved(c, tolerance=tol) for name, c in compared.conditions.items()
        }
        first = next(iter(conditions.values()))
        version = compared.tool_version
        shown = "?" if version is msgspec.UNSET else version
        return CompareReport(first.plan, first.device, conditions, shown)

    return _safely(build, source)  # type: ignore[no-any-return]
