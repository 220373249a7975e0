"""The saved report format as types: decoded and validated in one pass (msgspec).

A saved report is untrusted input. Every field a writer puts in one is declared here with its
type and bounds (``results.bounds``), and ``msgspec.json.decode`` checks them while it decodes:
no separate schema pass over a decoded tree, no hand-written codec (the hot part, a run's trials,
decodes at about 3 µs a trial). What types cannot say is checked by ``results.validate`` on the
decoded values: free-form values' depth and strings, and the rules a live run obeys.

The published JSON Schema (``report.schema.json``) is generated from these types
(``saved_schema``); ``tests/test_saved_reports.py`` fails when the committed file differs.
Unknown fields are ignored (a newer writer may add one); a missing required field, a wrong type or
a value out of bounds is one ``SavedReportError`` naming the field (``report.runs[0].seed``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from repro_check.bounds import MAX_COUNT, MAX_TEXT
from repro_check.results.saved_errors import SavedReportError, explain

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


class Trial(msgspec.Struct, gc=False):
    """One trial (``TrialRecord.to_dict``). ``distributions``/``system_attrs`` are UNSET in a
    report saved before they were recorded."""

    number: Count
    state: TrialState
    params: Params
    values: (
        Annotated[tuple[Number, ...], _meta("a list of numbers, or null", max_length=1000)] | None
    )
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
    seed_param: Text | None = None
    via: Text | None = None


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
    n_jobs: Annotated[
        int, _meta("an integer from -1000000000 to 1000000000", ge=-MAX_COUNT, le=MAX_COUNT)
    ]
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
    seed: Seed | None
    """Null in a script's report when no control hands the seed to the code."""
    trials: Annotated[int, _meta("an integer from 1 to 1000000000", ge=1, le=MAX_COUNT)] | None
    """This and the other study settings up to ``n_jobs``: null in a script's report (its
    studies record their own); an objective-mode report must have them (``validate``)."""
    device: Annotated[Literal["auto", "cpu", "cuda"], _meta("auto, cpu or cuda")]
    tolerance: Tolerance
    controls: Annotated[dict[ControlName, bool], _meta("an object of control names to true/false")]
    directions: Directions | None
    sampler: LongText | None
    sampler_kwargs: FreeObject | None
    pruner: ShortText | None
    pruner_kwargs: FreeObject | None
    n_jobs: Annotated[int, _meta("-1 or an integer >= 1", ge=-1, le=MAX_COUNT)] | None
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
    parameters: StringMap | msgspec.UnsetType = msgspec.UNSET
    """A notebook's ``-p`` values (name -> the Python source assigned); absent otherwise."""


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
    labels: dict[ConditionName, ShortText] | msgspec.UnsetType = msgspec.UNSET
    """How every output names each condition ("fixed seed", "seed sweep", "as written")."""
    judged: list[ConditionName] | msgspec.UnsetType = msgspec.UNSET
    """The conditions whose verdict counts (the seed sweep is described, never judged)."""
    exit_code: ExitCode | msgspec.UnsetType = msgspec.UNSET
    summary: Text | msgspec.UnsetType = msgspec.UNSET


class Header(msgspec.Struct):
    """What is read first, to say which report this is (or why it is none)."""

    schema_version: Any = None
    command: Any = None


def encode_plain(data: Any) -> bytes:
    """Plain JSON values (``to_dict`` output, a test's dict) as the bytes a saved file would
    hold, for ``decode``. A float NaN or infinity is refused: msgspec would write it as null,
    and two values that differ (NaN and inf in a user attribute) would read back equal."""
    import json

    try:
        return json.dumps(data, allow_nan=False).encode()
    except ValueError as exc:
        raise SavedReportError(f"report: {exc} (JSON has no NaN or infinity)") from None


def decode(raw: bytes | bytearray, kind: Any) -> Any:
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
