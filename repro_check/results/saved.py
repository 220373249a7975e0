"""The saved report format as types: decoded and validated in one pass (msgspec).

A saved report is untrusted input. Every field a writer puts in one is declared here with its
type and bounds (``results.bounds``), and ``msgspec.json.decode`` checks them while it decodes:
no separate schema pass over a decoded tree, no hand-written codec (the hot part, a run's trials,
decodes at about 3 µs a trial). What types cannot say is checked by ``results.validate`` on the
decoded values: free-form values' depth and strings, and the rules a live run obeys.

The published JSON Schema (``report.schema.json``) is generated from these types
(``report_schema``); ``tests/test_saved_reports.py`` fails when the committed file differs.
Unknown fields are ignored (a newer writer may add one); a missing required field, a wrong type or
a value out of bounds is one ``SavedReportError`` naming the field (``report.runs[0].seed``).
"""

from __future__ import annotations

import math
import re
import reprlib
import typing
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from repro_check.results.bounds import MAX_COUNT, MAX_TEXT

# -- the building blocks: each carries the description an error message quotes ----------------


def _meta(description: str, **bounds: Any) -> msgspec.Meta:
    return msgspec.Meta(description=description, **bounds)


Text = Annotated[str, _meta(f"a string of at most {MAX_TEXT} characters", max_length=MAX_TEXT)]
ShortText = Annotated[str, _meta("a string of at most 100 characters", max_length=100)]
LongText = Annotated[str, _meta("a string of at most 4096 characters", max_length=4096)]
Key = Annotated[str, msgspec.Meta(max_length=1000)]
Count = Annotated[int, _meta(f"an integer from 0 to {MAX_COUNT}", ge=0, le=MAX_COUNT)]
Seed = Annotated[int, _meta("an integer from 0 to 4294967295", ge=0, le=2**32 - 1)]
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
Number: TypeAlias = Annotated[
    float | NonFinite, _meta('a number, "NaN", "Infinity" or "-Infinity"')
]
"""A float; non-finite ones travel as the strings "NaN", "Infinity" and "-Infinity"."""
Direction = Annotated[Literal["minimize", "maximize"], _meta("minimize or maximize")]
Directions = Annotated[
    list[Direction], _meta("a non-empty list of minimize/maximize", min_length=1, max_length=1000)
]
Strings = Annotated[list[Text], _meta("a list of at most 10000 strings", max_length=10_000)]
StringMap = Annotated[dict[Key, Text], _meta("an object of strings", max_length=10_000)]
FreeObject = Annotated[dict[str, Any], _meta("an object")]
"""Free-form (user and system attributes, kwargs): bounded by ``validate`` before it is read."""
TrialStateName = Literal["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
TrialState = Annotated[TrialStateName, _meta("COMPLETE, PRUNED, FAIL, RUNNING or WAITING")]
RunStatusName = Literal["ok", "crashed", "timeout", "error", "cancelled"]
"""``vocab.RunStatus``'s values (``tests/test_vocab.py`` pins them to it)."""
VerdictName = Literal[
    "reproducible",
    "not reproducible",
    "incomplete",
    "differs from baseline",
    "awaiting replicates",
    "interrupted",
]
"""``vocab.Verdict``'s values (pinned as ``RunStatusName``)."""
ConditionName = Literal["fixed_seed", "seed_sweep", "uncontrolled"]
"""``vocab.Condition``'s values (pinned as ``RunStatusName``)."""
ControlName = Literal[
    "sampler_seed",
    "global_rng",
    "trial_reseed",
    "hash_seed",
    "threads",
    "torch_determinism",
    "cudnn",
]
ModeName = Literal["script", "objective"]
ExitCodeValue = Literal[0, 1, 2, 3, 130]
ExitCode = Annotated[ExitCodeValue, _meta("0, 1, 2, 3 or 130")]
SchemaVersion = Annotated[Literal[1, 2], _meta("the integer 1 or 2")]


class FloatTag(msgspec.Struct, forbid_unknown_fields=True):
    """A non-finite float *param*, ``{"$float": "NaN"}``: a bare "NaN" could be a string choice."""

    value: Number = msgspec.field(name="$float")


ParamValue = Annotated[
    Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | int | float | bool | FloatTag | None,
    _meta('a parameter value (string, number, bool, null or {"$float": ...})'),
]
Params = Annotated[
    dict[Key, ParamValue],
    _meta("an object of parameter values", max_length=100_000),
]
Step = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]{1,19}$")]


class Trial(msgspec.Struct):
    """One trial (``TrialRecord.to_dict``). ``distributions``/``system_attrs`` are UNSET in a
    report saved before they were recorded."""

    number: Count
    state: TrialState
    params: Params
    values: Annotated[list[Number], _meta("a list of numbers, or null", max_length=1000)] | None
    intermediate_values: Annotated[
        dict[Step, Number], _meta("an object of integer steps to numbers", max_length=1_000_000)
    ] = {}
    user_attrs: FreeObject = {}
    distributions: FreeObject | msgspec.UnsetType = msgspec.UNSET
    system_attrs: FreeObject | msgspec.UnsetType = msgspec.UNSET
    error: Text | None = None
    duration_s: Number | None = None


Trials = Annotated[list[Trial], _meta("a list of trials", max_length=MAX_COUNT)]


SAMPLER_SEED = "an integer from -9223372036854775808 to 18446744073709551615, or null"


class Sampler(msgspec.Struct):
    """The sampler a script built for one study (``SamplerInfo``)."""

    cls: Text = msgspec.field(name="class")
    seed: Annotated[int, _meta(SAMPLER_SEED)] | None
    """Bounded by ``validate`` (msgspec bounds stop at 64-bit signed)."""
    at: Text | None
    seeded_by_check: bool


class Study(msgspec.Struct):
    """One study of a run (``StudyRecord``); the first one's ``trials`` are the run's (null)."""

    name: Text
    directions: Directions
    sampler: Sampler
    pruner: Text | None
    at: Text | None
    n_trials: (
        Annotated[int, _meta("an integer of at most 19 digits, or null", ge=-(2**63), le=2**63 - 1)]
        | None
    )
    timeout: Number | None
    n_jobs: Annotated[int, _meta("an integer from -1000000000 to 1000000000", ge=-MAX_COUNT)]
    capped: bool
    loaded: bool
    trials: Annotated[list[Trial], _meta("a list of trials, or null", max_length=MAX_COUNT)] | None
    pending: Strings
    user_attrs: FreeObject | msgspec.UnsetType = msgspec.UNSET


class Gpu(msgspec.Struct):
    """The one GPU a worker was pinned to (``execution.gpus``)."""

    index: int | None = None
    name: Text | None = None
    uuid: Text | None = None
    driver: Text | None = None
    compute_capability: Text | None = None
    error: Text | None = None


class Run(msgspec.Struct, omit_defaults=True):
    """One replicate (``RunRecord.to_dict`` and the report's per-run fields). Defaults are
    left out when it is turned back into plain values (``ResumeCheck.from_dict`` reads a run
    with ``studies`` as a script's)."""

    index: Count
    seed: Seed
    status: Annotated[RunStatusName, _meta("ok, crashed, timeout, error or cancelled")]
    error: Text | None
    directions: Directions
    trials: Trials
    best_value: Number | None = None
    best_params: Params | Annotated[list[Params], _meta("a list of parameter values")] | None = None
    best_values: list[list[Number]] = []
    pareto_trials: list[Count] = []
    wall_s: Number | None = None
    notes: Strings = []
    environment_fingerprint: Annotated[str, _meta("a string of at most 64", max_length=64)] = ""
    studies: (
        Annotated[list[Study], _meta("a list of at most 10000 studies", max_length=10_000)]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    gpu: FreeObject | None = None
    """Checked as a ``Gpu`` and kept whole (``validate``): the run's environment holds it."""


class Tolerance(msgspec.Struct, forbid_unknown_fields=True):
    atol: Annotated[float, _meta("a number >= 0", ge=0)]
    rtol: Annotated[float, _meta("a number >= 0", ge=0)]


NullableCount = Annotated[int, _meta("an integer >= 1, or null", ge=1, le=MAX_COUNT)] | None
Positive = Annotated[float, _meta("a number > 0, or null", gt=0)] | None
NullableText = Annotated[str, _meta("a string or null", max_length=4096)] | None


class Settings(msgspec.Struct):
    """The plan a report was made with (``CheckPlan.to_dict``); also checked as the command
    line's flags are (``validate``)."""

    runs: Annotated[int, _meta("an integer from 2 to 1000000000", ge=2, le=MAX_COUNT)]
    seed: Seed
    trials: Annotated[int, _meta("an integer from 1 to 1000000000", ge=1, le=MAX_COUNT)]
    device: Annotated[Literal["auto", "cpu", "cuda"], _meta("auto, cpu or cuda")]
    tolerance: Tolerance
    controls: Annotated[dict[ControlName, bool], _meta("an object of control names to true/false")]
    directions: Directions
    sampler: LongText
    sampler_kwargs: FreeObject
    pruner: ShortText
    pruner_kwargs: FreeObject
    n_jobs: Annotated[int, _meta("-1 or an integer >= 1", ge=-1, le=MAX_COUNT)]
    fail_fast: bool
    threads: Annotated[int, _meta("an integer >= 1", ge=1, le=MAX_COUNT)]
    workers: NullableCount
    timeout: Positive
    storage: NullableText = None
    name: NullableText = None
    stale_after: Positive = None
    args: Strings | msgspec.UnsetType = msgspec.UNSET
    cap: (
        Annotated[int, _meta("an integer from 1 to 1000000000, or null", ge=1, le=MAX_COUNT)] | None
    ) = None
    resume_at: Count | None = None
    gpus: NullableText = None


class Divergence(msgspec.Struct):
    trial: Count
    field: ShortText
    runs: Annotated[list[Annotated[int, msgspec.Meta(ge=-1, le=MAX_COUNT)]], _meta("run indices")]
    detail: Text
    max_abs_diff: Number | None = None
    max_rel_diff: Number | None = None


class Stats(msgspec.Struct):
    mean: Number | None = None
    std: Number | None = None
    min: Number | None = None
    max: Number | None = None
    range: Number | None = None
    n: Count = 0
    type: Literal["numeric", "categorical"] = "numeric"
    counts: Annotated[dict[Text, Count], _meta("an object of counts")] = {}


class Summary(msgspec.Struct):
    best_value: Stats | None = None
    best_params: Annotated[dict[Key, Stats | None], _meta("parameter spreads")] = {}
    distinct_histories: Count = 0


class Baseline(msgspec.Struct):
    path: LongText
    matches: bool
    divergence: Divergence | None
    best_value_before: Number | None = None
    best_value_now: Number | None = None
    best_params_before: Params | None = None
    best_params_now: Params | None = None
    settings_changed: Strings = []


class Resume(msgspec.Struct):
    """``run --resume-at K``: the resumed replicates (only ``at`` and ``runs`` are read)."""

    at: Count
    runs: Annotated[list[Run], _meta("a list of at least one run", min_length=1, max_length=10**5)]
    straight_reproducible: bool = False
    resumed_reproducible: bool = False
    matches: bool = False
    first_difference: FreeObject | None = None
    reason: Text | None = None
    fix: Text | None = None


class Torch(msgspec.Struct):
    version: Text | None = None
    cuda: Text | None = None
    cudnn: int | Annotated[str, msgspec.Meta(max_length=100)] | None = None
    gpus: Strings = []
    threads: int | None = None
    deterministic_algorithms: bool | None = None
    error: Text | None = None


class Environment(msgspec.Struct):
    """The known fields of a report's environment; the environment itself is kept whole."""

    python: Text | None = None
    implementation: Text | None = None
    platform: Text | None = None
    machine: Text | None = None
    cpu: Text | None = None
    cpu_count: int | None = None
    packages: StringMap = {}
    torch: Torch | None = None
    threads: int | None = None
    threads_pinned: bool = False
    env: StringMap = {}
    gpu: Gpu | None = None


class RunReport(msgspec.Struct):
    """A ``run`` report (``RunReport.to_dict``), or one condition of a ``compare`` report."""

    schema_version: SchemaVersion
    command: Literal["run", "compare"]
    target: LongText
    stopped_early: bool
    awaiting: Count
    interrupted: bool
    settings: Settings
    runs: Annotated[list[Run], _meta("a list of at least one run", min_length=1, max_length=10**5)]
    baseline: Baseline | None
    notes: Annotated[list[Text], _meta("a list of strings", max_length=100_000)]
    environment: FreeObject
    """Checked as an ``Environment`` and kept whole: its free keys are shown and fingerprinted."""
    tool_version: ShortText | msgspec.UnsetType = msgspec.UNSET
    mode: Annotated[ModeName, _meta("script or objective")] | msgspec.UnsetType = msgspec.UNSET
    reproducible: bool | msgspec.UnsetType = msgspec.UNSET
    verdict: Annotated[VerdictName, _meta("a verdict")] | msgspec.UnsetType = msgspec.UNSET
    exit_code: ExitCode | msgspec.UnsetType = msgspec.UNSET
    divergence: Divergence | None = None
    summary: Summary | msgspec.UnsetType = msgspec.UNSET
    resume: Resume | None = None


class CompareReport(msgspec.Struct):
    """A ``compare`` report: one run-shaped report per condition."""

    schema_version: SchemaVersion
    command: Literal["compare"]
    target: LongText
    conditions: Annotated[dict[ConditionName, RunReport], _meta("conditions", min_length=1)]
    tool_version: ShortText | msgspec.UnsetType = msgspec.UNSET
    exit_code: ExitCode | msgspec.UnsetType = msgspec.UNSET
    summary: Text | msgspec.UnsetType = msgspec.UNSET


class Header(msgspec.Struct):
    """What is read first, to say which report this is (or why it is none)."""

    schema_version: Any = None
    command: Any = None


# -- errors: msgspec's message made one line that names the field -------------------------------


class SavedReportError(ValueError):
    """A saved report that does not decode into the types above; the message names the field."""


_SHOW = reprlib.Repr()
_SHOW.maxstring = 40
_SHOW.maxother = 40
_SHOW.maxlevel = 2
_SHOW.maxlist = _SHOW.maxdict = 3

_AT = re.compile(r"^(?P<what>.*?)(?: - at (?P<key>`key` in )?`(?P<path>\$[^`]*)`)?$", re.S)
_GOT = re.compile(r", got `[^`]*`$")
_SEGMENT = re.compile(r"\.([A-Za-z0-9_$]+)|\[(\d+|\.\.\.)\]")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`")
_TYPE_WORDS = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "null": "null",
    "object": "an object",
    "array": "a list",
}


def printable(text: str, limit: int = 200) -> str:
    """A field path or value for a one-line message: control characters escaped, bounded."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _strip(tp: Any) -> tuple[Any, str | None]:
    """A type without ``Annotated``, and the description its metadata gives (if any)."""
    description = None
    while typing.get_origin(tp) is Annotated:
        for extra in tp.__metadata__:
            if isinstance(extra, msgspec.Meta) and extra.description:
                description = extra.description
        tp = tp.__origin__
    return tp, description


def _members(tp: Any, plain: bool = True) -> tuple[Any, ...]:
    """A union's members (``tp`` alone otherwise), ``Annotated`` stripped when ``plain``."""
    tp, _ = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, type(int | None)):
        return tuple(_strip(m)[0] if plain else m for m in typing.get_args(tp))
    return (tp,)


def _child(tp: Any, value: Any, step: str) -> Any:
    """The declared type of ``value[step]`` (a field name or an index), given ``value``'s."""
    for member in _members(tp):
        struct = isinstance(member, type) and issubclass(member, msgspec.Struct)
        if struct and isinstance(value, dict):
            hints = typing.get_type_hints(member, include_extras=True)
            for field in msgspec.structs.fields(member):
                if step in (field.name, field.encode_name):
                    return hints[field.name]
        origin = typing.get_origin(member)
        if origin is dict and isinstance(value, dict):
            return typing.get_args(member)[1]
        if origin is list and isinstance(value, list):
            return typing.get_args(member)[0]
    return Any


def _bad_key(mapping: dict[str, Any], value_type: Any) -> str | None:
    """The first key of ``mapping`` whose value is not a ``value_type`` (msgspec names none)."""
    for key, value in mapping.items():
        try:
            msgspec.convert(value, value_type, strict=False)
        except msgspec.ValidationError:
            return str(key)
    return None


def _locate(path: str, data: Any, root: Any) -> tuple[str, Any, Any, bool]:
    """msgspec's ``$.runs[0].params[...]`` walked over the plain decoded ``data``: the path with
    dict keys filled in (``report.runs[0].params.x``), the value there, its declared type and
    whether the value was found."""
    shown, value, tp = "report", data, root
    for name, index in _SEGMENT.findall(path[1:]):
        if index == "...":
            key = _bad_key(value, _child(tp, value, "")) if isinstance(value, dict) else None
            if key is None:
                return shown + "[...]", None, Any, False
            name = key
        step = name or index
        tp = _child(tp, value, step if name else "")
        try:
            value = value[step] if name else value[int(index)]
        except (KeyError, IndexError, TypeError, ValueError):
            return shown + (f".{step}" if name else f"[{index}]"), None, Any, False
        shown += f".{step}" if name else f"[{index}]"
    return shown, value, tp, True


def _expected(what: str, tp: Any) -> str:
    """What the field should hold: its description, else msgspec's words made plain."""
    _, description = _strip(tp)
    for member in _members(tp, plain=False):
        if description is None:
            description = _strip(member)[1]
    if description:
        return description
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, msgspec.Struct):
            return f"a {member.__name__.lower()} object"
        if typing.get_origin(member) is Literal:
            return " or ".join(map(repr, typing.get_args(member)))
    found = re.search(r"Expected `([^`]*)`(.*)", what)
    if found:
        words = [_TYPE_WORDS.get(word.strip(), word.strip()) for word in found[1].split("|")]
        return " or ".join(words) + found[2]
    return what[:1].lower() + what[1:]


def _plain(raw: bytes | str) -> Any:
    """``raw`` as plain values (to name where it is wrong); a number msgspec cannot hold (1e400,
    an int of 20 digits) is read by ``json`` instead (as infinity, a long int)."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _out_of_range(value: Any) -> str | None:
    """Where under ``value`` the first number too large for msgspec is (``.tolerance.atol``)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, at = stack.pop(0)
        if isinstance(item, float) and item in (math.inf, -math.inf):
            return at
        if isinstance(item, int) and not -(2**63) <= item < 2**64:
            return at
        if isinstance(item, dict):
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
    return None


def explain(error: msgspec.ValidationError, raw: bytes | str, root: Any) -> str:
    """``error`` (decoding ``raw`` as ``root``) as ``report.runs[0].seed: expected ..., got 3``."""
    text = str(error)
    match = _AT.match(text)
    what, path = (match["what"], match["path"] or "$") if match else (text, "$")
    what = _GOT.sub("", what)
    data = _plain(raw)
    where, value, tp, found = _locate(path, data, root)
    missing = _MISSING.match(what)
    if missing:
        return f"{printable(where)}.{printable(missing['field'])}: missing"
    if match and match["key"]:
        return f"{printable(where)}: a key that is not {_expected(what, Any)}"
    if what.endswith("out of range"):
        deeper = _out_of_range(value) if found else None
        return f"{printable(where + (deeper or ''))}: a number out of range"
    got = f", got {printable(_SHOW.repr(value))}" if found else ""
    return f"{printable(where)}: expected {_expected(what, tp)}{got}"


def decode(raw: bytes, kind: Any) -> Any:
    """``raw`` decoded as ``kind``; ``SavedReportError`` names the first field that is wrong."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise SavedReportError(explain(exc, raw, kind)) from None


def check(value: Any, kind: Any, where: str) -> None:
    """A free-form part kept whole (the environment, a run's GPU) checked as ``kind``."""
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        message = explain(exc, msgspec.json.encode(value), kind)
        raise SavedReportError(where + message.removeprefix("report")) from None


# -- the published schema ----------------------------------------------------------------------

SCHEMA_NAMES = {
    "RunReport": "run_report",
    "CompareReport": "compare_report",
    "Settings": "settings",
    "Tolerance": "tolerance",
    "Run": "run",
    "Trial": "trial",
    "Study": "study",
    "Sampler": "sampler_info",
    "FloatTag": "float_tag",
    "Divergence": "divergence",
    "Stats": "stats",
    "Summary": "summary",
    "Baseline": "baseline",
    "Resume": "resume",
    "Environment": "environment",
    "Torch": "torch",
    "Gpu": "gpu",
}
"""Each type's name in the schema's ``definitions`` (the names the hand-written schema had)."""

SCHEMA_DESCRIPTION = (
    "A `run` report (also what baselines are) or a `compare` report, as written by --json / "
    "--save-baseline; generated from repro_check.results.saved. Strings are bounded; non-finite "
    "floats are the strings NaN/Infinity/-Infinity. Version 2 added `mode` and each run's "
    "`studies` (script mode); a version 1 file has neither and is an objective-mode report. A "
    "run's `environment` and `gpu` are objects kept whole, their known fields as `environment` "
    "and `gpu` say. Semantic rules (unique run indices, trials per run, unique trial numbers per "
    "study, finite tolerances, the mode matching the target, free-form values nested at most 32 "
    "levels) are checked by repro_check.results.validate on top of this schema."
)


_ORDERED = (
    RunStatusName,
    VerdictName,
    ConditionName,
    ControlName,
    TrialStateName,
    ExitCodeValue,
    ModeName,
)


def _declared_order(schema: Any) -> Any:
    """msgspec lists a Literal's values sorted; the vocabularies' order is the documented one."""
    orders = {frozenset(typing.get_args(t)): list(typing.get_args(t)) for t in _ORDERED}
    if isinstance(schema, dict):
        found = {k: _declared_order(v) for k, v in schema.items()}
        enum = found.get("enum")
        if isinstance(enum, list) and frozenset(enum) in orders:
            found["enum"] = orders[frozenset(enum)]
        return _nullable(found)
    if isinstance(schema, list):
        return [_declared_order(v) for v in schema]
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [{type: integer, ...}, {type: null}]`` as ``type: [integer, null]``: one level,
    so a reader finds a field's bounds where the hand-written schema had them."""
    options = schema.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return schema
    (other,) = [o for o in options if o != {"type": "null"}]
    if not isinstance(other.get("type"), str):
        return schema
    merged = {k: v for k, v in schema.items() if k != "anyOf"}
    merged.update({k: v for k, v in other.items() if k not in merged or k == "description"})
    merged["type"] = [other["type"], "null"]
    return merged


def report_schema() -> dict[str, Any]:
    """The JSON Schema of saved reports, generated from the types (``report.schema.json``)."""
    _, components = msgspec.json.schema_components(
        (RunReport, CompareReport, Environment, Gpu), ref_template="#/definitions/{name}"
    )
    text = msgspec.json.encode(_declared_order(components)).decode()
    for name, shown in SCHEMA_NAMES.items():
        text = text.replace(f'"#/definitions/{name}"', f'"#/definitions/{shown}"')
    definitions = {SCHEMA_NAMES.get(k, k): v for k, v in msgspec.json.decode(text).items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "repro-check saved report (schema_version 2; version 1 files still validate)",
        "description": SCHEMA_DESCRIPTION,
        "anyOf": [
            {"$ref": "#/definitions/compare_report"},
            {"$ref": "#/definitions/run_report"},
        ],
        "definitions": dict(sorted(definitions.items())),
    }


def write_schema() -> None:
    """Regenerate ``report.schema.json`` beside this module (after changing a type above)."""
    import json
    from pathlib import Path

    text = json.dumps(report_schema(), indent=1, ensure_ascii=False) + "\n"
    Path(__file__).with_name("report.schema.json").write_text(text, encoding="utf-8")
