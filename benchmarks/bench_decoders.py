"""Decode-and-validate only: the candidate libraries on one saved report (issue 20, item 3).

What each candidate costs to turn a report's bytes into checked values, before any record is
built (``bench_saved_reports.py`` times the whole commands):

- ``json+fastjsonschema``: ``json.loads`` then the hand-written draft-7 schema that shipped
  before (read from git at ``--schema-commit``), what ``main`` did;
- ``msgspec untyped+convert``: ``msgspec.json.decode`` to plain values, then
  ``msgspec.convert`` into ``results.saved``'s types;
- ``msgspec typed``: ``msgspec.json.decode(raw, type=saved.RunReport)``, validate-while-decode
  (what repro-check now does);
- ``pydantic``: ``TypeAdapter(list[Trial]).validate_json`` of one run's trials, with a
  ``TypedDict`` trial of the same fields and bounds (for scale: one run, times the run count).

A library that is not installed is skipped. Run ``bench_saved_reports.py`` first to write the
report, then e.g.:

    python benchmarks/bench_decoders.py /tmp/repro-check-bench-2x45000.json
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OLD_SCHEMA_COMMIT = "cb729aa"
"""A commit whose ``report.schema.json`` is the hand-written one fastjsonschema checked."""


def _timed(label: str, work: Callable[[], Any], repeat: int) -> None:
    """Best wall time with the cyclic collector on, and off (as repro-check reads reports)."""
    shown = []
    for collector in (True, False):
        best = float("inf")
        for _ in range(repeat):
            gc.collect()
            if not collector:
                gc.disable()
            start = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - start)
            gc.enable()
        shown.append(f"{best:6.2f} s")
    print(f"{label:>28}: {shown[0]} (gc on)  {shown[1]} (gc off)")


def _fastjsonschema(raw: bytes, commit: str) -> Callable[[], Any] | None:
    try:
        import fastjsonschema
    except ImportError:
        return None
    text = subprocess.run(
        ["git", "show", f"{commit}:repro_check/results/report.schema.json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    validate = fastjsonschema.compile(json.loads(text))
    return lambda: validate(json.loads(raw))


def _pydantic(raw: bytes) -> tuple[Callable[[], Any], int] | None:
    try:
        import pydantic  # noqa: F401
    except ImportError:
        return None
    from typing import Annotated, Literal, NotRequired

    from pydantic import Field, TypeAdapter
    from typing_extensions import TypedDict

    number = float | Literal["NaN", "Infinity", "-Infinity"]

    class Trial(TypedDict):
        number: Annotated[int, Field(ge=0, le=10**9)]
        state: Literal["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]
        params: dict[Annotated[str, Field(max_length=1000)], str | int | float | bool | None]
        values: list[number] | None
        intermediate_values: NotRequired[dict[str, number]]
        user_attrs: NotRequired[dict[str, Any]]
        error: NotRequired[Annotated[str, Field(max_length=65536)] | None]
        duration_s: NotRequired[number | None]

    runs = json.loads(raw)["runs"]
    one_run = json.dumps(runs[0]["trials"]).encode()
    adapter = TypeAdapter(list[Trial])
    return (lambda: adapter.validate_json(one_run)), len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--schema-commit", default=OLD_SCHEMA_COMMIT)
    args = parser.parse_args()

    import msgspec

    from repro_check.results import saved

    raw = args.report.read_bytes()
    print(f"{args.report.name}: {len(raw) / 1e6:.0f} MB; best of {args.repeat}")
    old = _fastjsonschema(raw, args.schema_commit)
    if old is not None:
        _timed("json+fastjsonschema", old, args.repeat)
    _timed(
        "msgspec untyped+convert",
        lambda: msgspec.convert(msgspec.json.decode(raw), saved.RunReport),
        args.repeat,
    )
    _timed("msgspec typed", lambda: msgspec.json.decode(raw, type=saved.RunReport), args.repeat)
    found = _pydantic(raw)
    if found is not None:
        work, runs = found
        _timed(f"pydantic (1 of {runs} runs)", work, args.repeat)


if __name__ == "__main__":
    main()
