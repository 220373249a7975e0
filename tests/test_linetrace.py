"""Issue 12, items 2 and 6: the line tracer. Both backends (sys.monitoring on 3.12+,
sys.settrace on 3.11) give the same events; the trace is bounded (events, time, bytes) and says
which bound stopped it; diagnose names the first line where two processes part, for an
iteration-order objective and for scripts (the script's own files)."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FIXTURES, cli, fixture

from repro_check.execution import linetrace
from repro_check.execution.linetrace import (
    MONITORING,
    SETTRACE,
    LineTrace,
    digest,
    first_split,
)

HAS_MONITORING = getattr(sys, "monitoring", None) is not None
needs_monitoring = pytest.mark.skipif(
    not HAS_MONITORING, reason="sys.monitoring needs Python 3.12+ (this is settrace's Python)"
)
HERE = str(Path(__file__).resolve())


def only_here(filename: str) -> bool:
    return filename == HERE


def traced(func: Any, *args: Any, backend: str | None = None) -> LineTrace:
    trace = LineTrace(only_here, backend=backend)
    trace.start()
    try:
        func(*args)
    except ValueError:
        pass
    finally:
        trace.stop()
    return trace


def sample(n: int) -> float:
    total = 0.0
    name = "a"
    for i in range(n):
        total += helper(i)
        name += "b"
    values = list(gen(3))
    arr = np.arange(4) * total
    if n > 2:
        raise ValueError(name)
    return total + sum(values) + float(arr.sum())


def helper(i: int) -> float:
    half = i / 2
    return half * 3


def gen(k: int) -> Any:
    for j in range(k):
        yield j * 1.5


def lines_of(trace: LineTrace) -> list[int]:
    return [event[1] for event in trace.events]


def test_the_default_backend_follows_the_python_version() -> None:
    expected = MONITORING if sys.version_info >= (3, 12) else SETTRACE
    assert linetrace.default_backend() == expected
    assert LineTrace().backend == expected


@pytest.mark.parametrize("n", [2, 3])
def test_settrace_records_lines_returns_and_locals(n: int) -> None:
    trace = traced(sample, n, backend=SETTRACE)
    assert trace.truncated is None and trace.backend == SETTRACE
    files = {event[0] for event in trace.events}
    assert len(files) == 1 and files.pop().endswith("test_linetrace.py")
    helper_line = helper.__code__.co_firstlineno + 1
    assert lines_of(trace).count(helper_line) == n  # helper was traced each call
    last_locals = trace.events[-1][2]
    assert "total" in last_locals and "name" in last_locals
    assert last_locals["name"][1] == repr("a" + "b" * n)


@needs_monitoring
@pytest.mark.parametrize("n", [2, 3])
def test_monitoring_gives_the_same_events_as_settrace(n: int) -> None:
    """The same function traced by each backend: the same lines, locals and digests (a
    generator, a raised exception and nested calls included)."""
    a = traced(sample, n, backend=SETTRACE)
    b = traced(sample, n, backend=MONITORING)
    assert b.backend == MONITORING and a.backend == SETTRACE
    assert a.events == b.events
    assert len(a.events) > 10


@needs_monitoring
def test_monitoring_frees_its_tool_id_and_traces_only_its_thread() -> None:
    monitoring: Any = getattr(sys, "monitoring")  # noqa: B009 - absent on 3.11
    before = [monitoring.get_tool(i) for i in range(6)]
    trace = LineTrace(only_here, backend=MONITORING)
    trace.start()
    assert linetrace.TOOL_NAME in [monitoring.get_tool(i) for i in range(6)]
    other = threading.Thread(target=helper, args=(5,))
    other.start()
    other.join()
    helper(1)
    trace.stop()
    assert [monitoring.get_tool(i) for i in range(6)] == before
    halves = [e[2]["half"][1] for e in trace.events if "half" in e[2]]
    assert halves and set(halves) == {
        "0.5"
    }  # the other thread's call (half = 2.5) is not in the trace


@needs_monitoring
def test_monitoring_falls_back_to_settrace_when_no_tool_id_is_free() -> None:
    monitoring: Any = getattr(sys, "monitoring")  # noqa: B009 - absent on 3.11
    taken = []
    for tool in range(6):
        if monitoring.get_tool(tool) is None:
            monitoring.use_tool_id(tool, "test")
            taken.append(tool)
    try:
        trace = traced(helper, 4, backend=MONITORING)
    finally:
        for tool in taken:
            monitoring.free_tool_id(tool)
    assert trace.backend == SETTRACE and trace.events


def spin(n: int) -> int:
    acc = 0
    for i in range(n):
        acc += i
    return acc


@pytest.mark.parametrize("backend", [SETTRACE, pytest.param(MONITORING, marks=needs_monitoring)])
def test_a_huge_loop_stops_at_the_event_bound_and_says_so(backend: str) -> None:
    """Two million loop lines: the trace keeps MAX_EVENTS of them and stops (the loop runs on
    untraced, so the call still returns its result)."""
    trace = LineTrace(only_here, backend=backend)
    trace.start()
    result = spin(1_000_000)
    trace.stop()
    assert result == sum(range(1_000_000))
    assert len(trace.events) == linetrace.MAX_EVENTS
    assert trace.truncated == f"the trace stopped after {linetrace.MAX_EVENTS} lines"


def hold(array: np.ndarray) -> float:
    a = array
    b = a
    c = b
    d = c
    return float(d[0])


@pytest.mark.parametrize("backend", [SETTRACE, pytest.param(MONITORING, marks=needs_monitoring)])
def test_the_bytes_digested_are_bounded(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large array held across lines is hashed at each one: past MAX_BYTES the trace stops."""
    monkeypatch.setattr(linetrace, "MAX_BYTES", 3 * 8 * 1000)
    trace = LineTrace(only_here, backend=backend)
    trace.start()
    hold(np.zeros(1000))
    trace.stop()
    assert trace.truncated is not None and "MiB of locals" in trace.truncated
    assert 0 < len(trace.events) < 5


@pytest.mark.parametrize("backend", [SETTRACE, pytest.param(MONITORING, marks=needs_monitoring)])
def test_the_time_is_bounded(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linetrace, "MAX_SECONDS", -1.0)
    trace = traced(helper, 3, backend=backend)
    assert trace.events == [] and trace.truncated == "the trace stopped after -1 s"


class Unreadable:
    __module__ = "numpy"

    @property
    def nbytes(self) -> int:
        raise RuntimeError("no")

    def tobytes(self) -> bytes:
        raise RuntimeError("no")

    @property
    def dtype(self) -> Any:
        raise RuntimeError("no")


def with_unreadable() -> int:
    thing = Unreadable()
    big = 10**5000  # str() of it raises ValueError (int max str digits) on 3.11+
    return len([thing, big])


@pytest.mark.parametrize("backend", [SETTRACE, pytest.param(MONITORING, marks=needs_monitoring)])
def test_a_local_that_cannot_be_digested_never_reaches_the_objective(backend: str) -> None:
    trace = traced(with_unreadable, backend=backend)
    assert trace.truncated is None
    big = [e[2]["big"] for e in trace.events if "big" in e[2]]
    assert big and big[0][1] == "<int>"
    assert all("thing" not in e[2] for e in trace.events)


def test_digests_are_exact_and_skip_addresses() -> None:
    assert digest(10**5000) != digest(10**5000 + 1)
    assert digest(0.1) != digest(0.1 + 1e-17 * 0 + 2**-56)
    assert digest(np.array([object()], dtype=object)) is None  # addresses, not values
    assert digest(np.arange(3)) == digest(np.arange(3)) != digest(np.arange(3.0))
    nested = [[1.0] * 600, [2.0] * 600]  # 1,200 items: over MAX_ITEMS together
    assert digest(nested) is None and digest([[1.0] * 10, [2.0]]) is not None


def test_first_split_of_two_traced_processes_of_one_function() -> None:
    a = traced(sample, 2, backend=SETTRACE).events
    b = traced(sample, 3, backend=SETTRACE).events
    split = first_split(a, b)
    assert split is not None  # they run the loop a different number of times


# -- through the real command -------------------------------------------------------------


def diagnose(target: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    out = tmp_path / "diagnose.json"
    result = cli("diagnose", target, *flags, "--json", str(out))
    assert result.code == 0, result.out + result.err
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def line_of(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == text)


@pytest.mark.e2e
def test_the_tracer_finds_the_accumulation_line_of_an_iteration_order_objective(
    tmp_path: Path,
) -> None:
    """Iteration over a set of objects hashed by identity (its order follows ASLR'd memory
    addresses): no seed or control fixes it, the audit sees no source, and the tracer names
    the line that sums in that order, with the local that differs."""
    path = FIXTURES / "iteration_order.py"
    diagnosis = diagnose(fixture("iteration_order"), tmp_path, "--trials", "3")
    assert diagnosis["reproducible_under_full_control"] is False
    cause = diagnosis["causes"][0]
    assert cause["id"] == "objective_noise"
    location = cause["location"]
    assert location["file"].endswith("iteration_order.py")
    assert location["line"] == line_of(path, "total += feature.weight")
    assert location["source"] == "total += feature.weight"
    assert "the first line where two processes part" in cause["evidence"]
    assert f"iteration_order.py:{location['line']}: total = " in cause["evidence"]
    assert "line_trace" in [e["id"] for e in diagnosis["experiments"]]


@pytest.mark.e2e
def test_a_huge_loop_stops_the_trace_at_its_bound_and_the_diagnosis_says_so(
    tmp_path: Path,
) -> None:
    diagnosis = diagnose(fixture("huge_loop"), tmp_path, "--trials", "3")
    cause = diagnosis["causes"][0]
    assert cause["id"] == "objective_noise" and cause["location"] is None
    assert f"(the trace stopped after {linetrace.MAX_EVENTS} lines)" in cause["evidence"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("script", "line", "local"),
    [
        ("iteration_order", "total += feature.weight", "total"),
        ("unseeded_state", "noise = rng.normal()", "noise"),
        ("ask_tell_noise", "noise = rng.normal()", "noise"),
    ],
)
def test_a_script_gets_the_first_divergent_line_in_its_own_file(
    script: str, line: str, local: str, tmp_path: Path
) -> None:
    """Script mode: the trial where the controlled runs parted is run again, traced in the
    script's own files (the objective's call, or an ask/tell loop's lines from ``ask`` to
    ``tell``), and the cause is located at the script's line."""
    path = FIXTURES / "scripts" / f"{script}.py"
    diagnosis = diagnose(str(path), tmp_path)
    cause = diagnosis["causes"][0]
    assert cause["id"] == "objective_noise"
    assert cause["location"]["file"].endswith(f"scripts/{script}.py")
    assert cause["location"]["line"] == line_of(path, line)
    assert f": {local} = " in cause["evidence"]
    assert cause["fix"].startswith(f"# {cause['location']['file']}:{cause['location']['line']}:")
    trace = next(e for e in diagnosis["experiments"] if e["id"] == "line_trace")
    assert trace["description"].startswith("study 0 trial 0")


@pytest.mark.e2e
def test_a_script_is_traced_at_the_trial_where_its_runs_part(tmp_path: Path) -> None:
    """Two optimize calls on one study, the noise only in the second: the runs part at trial
    2, which is traced (the first call's trials are not)."""
    path = FIXTURES / "scripts" / "late_noise_two_calls.py"
    diagnosis = diagnose(str(path), tmp_path)
    cause = diagnosis["causes"][0]
    assert cause["trial"] == 2
    jitter = "jitter = np.random.RandomState(os.getpid()).normal()"
    assert cause["location"]["line"] == line_of(path, jitter)
    assert ": jitter = " in cause["evidence"]
    trace = next(e for e in diagnosis["experiments"] if e["id"] == "line_trace")
    assert trace["description"].startswith("study 0 trial 2")


def test_a_virtual_environment_inside_the_scripts_folder_is_not_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The script's folder is the user's (script mode adds it), but a virtual environment
    inside it (``project/.venv``) holds libraries: the tracer and the audit must not follow
    NumPy's own files there. A package installed in site-packages and run with ``-m`` stays
    the user's."""
    from repro_check.execution import userframes

    project = tmp_path / "project"
    site = project / ".venv" / "lib" / "python3.11" / "site-packages"
    monkeypatch.setattr(userframes, "_library_roots", lambda: (os.path.realpath(site) + os.sep,))
    monkeypatch.setattr(userframes, "_USER_ROOTS", [])
    userframes.is_user_file.cache_clear()
    try:
        userframes.add_user_root(str(project))
        assert userframes.is_user_file(str(project / "train.py"))
        assert userframes.is_user_file(str(project / "helpers" / "data.py"))
        assert not userframes.is_user_file(str(site / "numpy" / "core.py"))
        userframes.add_user_root(str(site / "mypkg"))
        assert userframes.is_user_file(str(site / "mypkg" / "__main__.py"))
        assert not userframes.is_user_file(str(site / "optuna" / "study.py"))
    finally:
        userframes.is_user_file.cache_clear()


def test_settrace_gives_back_the_trace_function_it_found() -> None:
    def other(frame: Any, event: str, arg: Any) -> None:
        return None

    saved = sys.gettrace()
    sys.settrace(other)
    try:
        traced(helper, 2, backend=SETTRACE)
        assert sys.gettrace() is other
    finally:
        sys.settrace(saved)


def test_run_never_traces_a_script() -> None:
    from repro_check.execution.replicates import replicate_jobs
    from repro_check.plan.config import build_plan

    plan = build_plan(str(FIXTURES / "scripts" / "iteration_order.py"), {}, pyproject=False)
    jobs = replicate_jobs(plan)
    assert jobs and all(job.script is not None for job in jobs)
    specs = [job.spec("t", 1, "cpu") for job in jobs]
    assert not any(p.trace or p.trace_at for p in specs)
