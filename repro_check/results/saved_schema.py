"""The published JSON Schema of saved reports, generated from ``results.saved``'s types.

``report.schema.json`` in the package is this function's output (``write_schema`` rewrites it;
``tests/test_saved_reports.py`` fails when the two differ): the types are the one statement of
the format, the schema their published form. Definitions keep the names the hand-written schema
had, and enumerations their vocabulary's order.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec

from repro_check.results.saved import (
    CompareReport,
    ConditionName,
    ControlName,
    Environment,
    ExitCodeValue,
    Gpu,
    ModeName,
    RunReport,
    RunStatusName,
    TrialStateName,
    VerdictName,
)

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
