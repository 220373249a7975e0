"""The worker protocol cannot be fooled, and worker processes never outlive their check.

Each hostile objective in tests/fixtures/hostile_*.py once made a study with lost, forged or
duplicated trials pass as reproducible, or left processes behind: the run must now crash
(exit 3) with a one-line reason, or be a set-up error (exit 2) naming the missing package.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import FIXTURES, cli, fixture, spawn_cli

from repro_check.execution.jobs import Job
from repro_check.execution.protocol import (
    ERROR_KINDS,
    EVENT_NAMES,
    EVENT_TYPES,
    PROTOCOL_VERSION,
    event_line,
    event_name,
    job_line,
    read_event,
    read_job,
)
from repro_check.execution.runner import _SETUP_ERRORS
from repro_check.execution.stream import StreamCheck, _spans
from repro_check.plan.settings import StudySettings
from repro_check.results.records import trials_digest
from repro_check.results.trial_record import TrialRecord


def assert_crashed(result, reason: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Exit 3, never "reproducible", and the crashed run says why in one line."""
    assert result.code == 3, result.out + result.err
    assert result.report["reproducible"] is False
    assert result.report["verdict"] != "reproducible"
    crashed = [run for run in result.report["runs"] if run["status"] == "crashed"]
    assert crashed, result.report["runs"]
    for run in crashed:
        assert reason in run["error"], run["error"]
        assert "\n" not in run["error"]
    assert "Traceback" not in result.out + result.err
    return crashed


# --- issue 8.2: lost, forged and duplicated trials --------------------------------------------


@pytest.mark.e2e
def test_a_stray_byte_on_the_pipes_crashes_the_run(run_check) -> None:
    result = run_check(fixture("hostile_stray_byte"), "--trials", "8", "--runs", "2")
    assert_crashed(result, "unparseable line")


@pytest.mark.e2e
def test_forged_done_lines_then_exit_crash_the_run(run_check) -> None:
    result = run_check(fixture("hostile_fake_done"), "--trials", "8", "--runs", "2")
    crashed = assert_crashed(result, "worker")
    assert all(len(run["trials"]) < 8 for run in crashed)


@pytest.mark.e2e
def test_optimize_patched_at_import_still_runs_every_trial(run_check) -> None:
    # the worker calls Study.optimize as it was before the target was imported
    result = run_check(fixture("hostile_patch_optimize"), "--trials", "8", "--runs", "2")
    assert result.code == 0, result.out + result.err
    assert all(len(run["trials"]) == 8 for run in result.report["runs"])
    assert "2 runs × 8 trials" in result.out


@pytest.mark.e2e
def test_a_patched_optimize_loop_running_fewer_trials_crashes(run_check) -> None:
    result = run_check(fixture("hostile_patch_internals"), "--trials", "8", "--runs", "2")
    assert_crashed(result, "worker streamed trials [0..2] but the study asked for 8")


@pytest.mark.e2e
def test_a_forked_child_carrying_on_with_the_study_is_never_reproducible(run_check) -> None:
    result = run_check(fixture("hostile_fork_continue"), "--trials", "6", "--runs", "2")
    assert_crashed(result, "forked by the objective")


@pytest.mark.e2e
def test_a_stopped_study_is_finished_with_a_note(run_check) -> None:
    result = run_check(fixture("hostile_stop"), "--trials", "8", "--runs", "2")
    assert result.code == 0, result.out + result.err
    for run in result.report["runs"]:
        assert run["status"] == "ok" and len(run["trials"]) == 5
        assert any("stopped after 5 of 8 trials" in note for note in run["notes"]), run["notes"]


# --- the parent's checks, line by line ---------------------------------------------------------

NONCE = "n" * 32
PID = 4242


def line(event: str, nonce: str = NONCE, pid: int = PID, **data: object) -> bytes:
    if event == "started":
        data.setdefault("version", PROTOCOL_VERSION)
    return (json.dumps({"event": event, "nonce": nonce, "pid": pid, **data}) + "\n").encode()


def trial_line(number: int, state: str = "COMPLETE", study: int = 0) -> bytes:
    record = TrialRecord(number, state, {"x": float(number)}, (float(number),))
    return line("trial", study=study, trial=record.to_dict())


def study_done(numbers: list[int], stopped: bool = False, count: int | None = None) -> bytes:
    pairs = [(n, "COMPLETE") for n in numbers]
    return line(
        "study_done",
        study=0,
        emitted=len(numbers),
        count=len(numbers) if count is None else count,
        digest=trials_digest(pairs),
        stopped=stopped,
    )


def fed(*lines: bytes, studies: int | None = None) -> StreamCheck:
    """The lines fed to a new stream check: a script's (studies 0) once one announces a
    study, else a one-study objective's."""
    if studies is None:
        studies = 0 if any(b'"study_info"' in raw for raw in lines) else 1
    protocol = StreamCheck(NONCE, PID, studies)
    for raw in lines:
        protocol.feed(raw)
    return protocol


def test_a_clean_stream_is_accepted() -> None:
    protocol = fed(line("started"), *(trial_line(n) for n in range(3)), study_done([0, 1, 2]))
    protocol.feed(line("done", environment={}, notes=[], nondeterministic_ops=[]))
    assert protocol.broken is None and protocol.done is not None
    assert protocol.study_problem(0, 3) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" + line("started"), "unparseable line"),
        (b"\xff\xfe\n", "unparseable line"),
        (line("started")[:-1], "unterminated line"),
        (b"[1, 2]\n", "not an event"),
        (line("started", nonce="f" * 32), "nonce"),
        (line("started", nonce=None), "nonce"),  # type: ignore[arg-type]
        (line("started", nonce="<nonce>"), "nonce"),
        (line("started", pid=PID + 1), "forked by the objective"),
        (line("hello"), "unknown event"),
        (line("trial", study=0, trial={}), "before 'started'"),
    ],
)
def test_a_bad_first_line_breaks_the_stream(raw: bytes, reason: str) -> None:
    protocol = fed(raw)
    assert protocol.broken is not None and reason in protocol.broken, protocol.broken
    assert "\n" not in protocol.broken


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (line("started"), "second 'started'"),
        (trial_line(0), "streamed twice"),
        (trial_line(1, state="RUNNING"), "state 'RUNNING'"),
        (line("trial", study=0, trial={"number": "1", "state": "COMPLETE"}), "numbered '1'"),
        (line("trial", study=0, trial={"number": True, "state": "COMPLETE"}), "numbered True"),
        (line("trial", study=0, trial={"number": 1, "state": "COMPLETE", "values": ["x"]}), "1"),
        (line("trial", study=0, trial="oops"), "malformed 'trial' event"),
        (line("trial", study=1, trial={}), "for study 1 while study 0 ran"),
        (line("trial", study="0", trial={}), "malformed 'trial' event"),
        (line("study_done", study=0, count="1", emitted=1, digest="", stopped=False), "count"),
        (line("study_done", study=0, count=1, emitted=1, digest=3, stopped=False), "digest"),
        (line("done", environment={}, notes=[]), "'done' after 0 of 1 studies"),
        (line("error", kind="bogus", message="m"), "malformed 'error'"),
        (line("error", kind="target", message=7), "malformed 'error'"),
    ],
)
def test_a_bad_later_line_breaks_the_stream(raw: bytes, reason: str) -> None:
    protocol = fed(line("started"), trial_line(0), raw)
    assert protocol.broken is not None and reason in protocol.broken, protocol.broken
    assert protocol.feed(trial_line(5)) is None  # nothing counts after the break
    assert len(protocol.trials[0]) == 1


def test_messages_do_not_show_the_nonce() -> None:
    protocol = fed(b"x" + line("started"))
    assert protocol.broken is not None and NONCE not in protocol.broken
    assert "<nonce>" in protocol.broken


def test_anything_after_done_breaks_the_stream() -> None:
    protocol = fed(line("started"), trial_line(0), study_done([0]))
    protocol.feed(line("done", environment={}, notes=[], nondeterministic_ops=[]))
    protocol.feed(trial_line(1))
    assert protocol.broken == "a 'trial' event after 'done'"
    second = fed(line("started"), line("error", kind="objective", message="boom"))
    second.feed(line("error", kind="objective", message="again"))
    assert second.broken == "a 'error' event after 'error'"


def test_a_finished_study_must_hold_every_trial_once() -> None:
    short = fed(line("started"), *(trial_line(n) for n in (0, 1, 3)), study_done([0, 1, 3]))
    assert short.study_problem(0, 4) == "worker streamed trials [0..1, 3] but the study asked for 4"
    few = fed(line("started"), *(trial_line(n) for n in range(3)), study_done([0, 1, 2]))
    assert few.study_problem(0, 8) == "worker streamed trials [0..2] but the study asked for 8"
    stopped = fed(line("started"), *(trial_line(n) for n in range(3)), study_done([0, 1, 2], True))
    assert stopped.study_problem(0, 8) is None
    unseen = fed(line("started"), trial_line(0), study_done([0], count=2))
    assert "holds 2 trials but 1 were streamed" in str(unseen.study_problem(0, 1))
    other = fed(line("started"), trial_line(0), study_done([1]))
    assert "other trials" in str(other.study_problem(0, 1))


# --- every event type is validated, from the types (issue 20 item 2) ---------------------------

SITE = {"source": "random", "kind": "call", "file": "f.py", "line": 3, "text": "random()"}
VALID: dict[str, dict[str, Any]] = {
    "started": {"version": PROTOCOL_VERSION},
    "study_info": {"study": 0, "info": {"name": "a", "directions": ["minimize"]}, "planned": 3},
    "trial": {"study": 0, "trial": TrialRecord(0, "COMPLETE", {"x": 0.0}, (0.0,)).to_dict()},
    "study_done": {"study": 0, "emitted": 0, "count": 0, "digest": "", "stopped": False},
    "done": {"wall_s": 0.5, "environment": {}, "notes": [], "nondeterministic_ops": []},
    "error": {"kind": "objective", "message": "boom", "ops": []},
    "audit": {"site": {**SITE, "trials": [0], "calls": 1}},
    "trace": {"events": [["f.py", 3, {"x": ["d", "1"]}]], "ops": [], "truncated": None},
}
"""One valid instance of each event, as its fields (a test below pins it to ``EVENT_TYPES``)."""


def _prefix(name: str) -> list[bytes]:
    """The lines that put a stream where event ``name`` may come next."""
    if name == "started":
        return []
    if name == "done":
        return [line("started"), study_done([])]
    return [line("started")]


def test_every_event_type_has_a_sample_and_a_handler() -> None:
    assert set(VALID) == {event_name(cls) for cls in EVENT_TYPES} == EVENT_NAMES
    assert set(StreamCheck(NONCE, PID, 1)._handlers) == set(EVENT_TYPES)
    assert set(_SETUP_ERRORS) <= ERROR_KINDS


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_instance_of_every_event_is_accepted_and_round_trips(name: str) -> None:
    protocol = fed(*_prefix(name), line(name, **VALID[name]))
    assert protocol.broken is None, protocol.broken
    event = read_event({"event": name, **VALID[name]})
    written = json.loads(event_line(event, NONCE, PID))  # what the worker would write
    assert (written.pop("nonce"), written.pop("pid")) == (NONCE, PID)
    assert read_event(written) == event


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=event_name)
def test_a_malformed_instance_of_every_event_is_refused(cls: type) -> None:
    name = event_name(cls)
    bad: list[dict[str, object]] = [{**VALID[name], "unexpected": 1}]
    for spec in msgspec.structs.fields(cls):
        bad.append({**VALID[name], spec.name: [["?"]]})  # no field of any event takes this
        if spec.required:
            bad.append({k: v for k, v in VALID[name].items() if k != spec.name})
    for fields in bad:
        raw = json.dumps({"event": name, "nonce": NONCE, "pid": PID, **fields}) + "\n"
        protocol = fed(*_prefix(name), raw.encode())
        assert protocol.broken is not None, fields
        assert f"malformed {name!r} event" in protocol.broken, protocol.broken
        assert "\n" not in protocol.broken


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("trace", {**VALID["trace"], "truncated": "x" * 200}),
        ("trace", {**VALID["trace"], "ops": [["op", "line"]]}),
        ("trace", {"events": [["f.py", 3, {str(i): ["d", "v"] for i in range(13)}]]}),
        ("trace", {"events": [["f.py", 3, {}]] * 5001}),
        ("audit", {"site": {**SITE, "trials": [0]}}),
        ("audit", {"site": {**SITE, "trials": [True], "calls": 1}}),
        ("done", {"audit": {"sites": [], "consumed": {}, "more": 1}}),
        ("done", {"audit": {"sites": [{**SITE, "trials": [], "calls": 1}] * 1001, "consumed": {}}}),
        ("error", {"kind": "objective", "message": "m", "ops": [1]}),
        ("study_done", {**VALID["study_done"], "stopped": 0}),
    ],
)
def test_the_bounds_and_nested_shapes_come_from_the_types(name: str, fields: dict) -> None:  # type: ignore[type-arg]
    protocol = fed(*_prefix(name), line(name, **fields))
    assert protocol.broken is not None and f"malformed {name!r}" in protocol.broken


def test_a_worker_of_another_protocol_version_breaks_the_stream() -> None:
    protocol = fed(line("started", version=PROTOCOL_VERSION + 1))
    assert protocol.broken is not None and "protocol version" in protocol.broken


def test_the_job_spec_round_trips_and_refuses_unknown_keys() -> None:
    job = Job(
        index=3,
        seed=7,
        study=StudySettings(trials=5),
        script={"path": "train.py", "args": ["--x"], "name": "train.py"},
        trace_at=(0, 2),
    )
    spec = job.spec("train.py", 2, "cpu")
    nonce, back = read_job(job_line(spec, NONCE))
    assert nonce == NONCE and back == spec and back.script is not None
    assert back.script.path == "train.py" and back.trace_at == (0, 2)
    data = json.loads(job_line(spec, NONCE))
    with pytest.raises(msgspec.ValidationError):
        read_job((json.dumps({**data, "surprise": 1}) + "\n").encode())
    with pytest.raises(ValueError, match="protocol"):
        read_job((json.dumps({**data, "version": PROTOCOL_VERSION + 1}) + "\n").encode())


@pytest.mark.e2e
def test_the_protocol_module_imports_nothing_a_script_would_import_first() -> None:
    # a script's worker loads it (and the worker's stream) before the user's script runs
    code = (
        "import sys\n"
        "import repro_check.execution.protocol, repro_check.execution.worker_stream\n"
        "print(sorted(m for m in ('optuna', 'numpy', 'torch', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_spans() -> None:
    assert _spans([0, 1, 2, 5, 7, 8]) == "[0..2, 5, 7..8]"
    assert _spans(list(range(0, 40, 2))) == "[0, 2, 4, 6, 8, ..., 38]"


# --- issue 8.1 (worker side): a broken study set-up is exit 2 ---------------------------------


@pytest.mark.e2e
def test_a_sampler_missing_a_package_is_a_setup_error() -> None:
    sampler = f"{FIXTURES / 'hostile_sampler.py'}:factory"
    result = cli(
        "run", fixture("deterministic"), "--runs", "2", "--trials", "10", "--sampler", sampler
    )
    assert result.code == 2, result.out + result.err
    assert "REPRODUCIBLE" not in result.out
    message = result.err.strip()
    assert len(message.splitlines()) == 1, message
    assert "'repro_check_no_such_package'" in message
    assert "pip install repro_check_no_such_package" in message


@pytest.mark.e2e
def test_a_relative_sampler_missing_a_package_is_a_setup_error() -> None:
    sampler = f"{FIXTURES / 'hostile_sampler.py'}:relative"
    result = cli(
        "run", fixture("deterministic"), "--runs", "2", "--trials", "6", "--sampler", sampler
    )
    assert result.code == 2, result.out + result.err
    assert "pip install repro_check_other_package" in result.err


@pytest.mark.e2e
@pytest.mark.skipif(
    __import__("importlib").util.find_spec("cmaes") is not None, reason="cmaes is installed"
)
def test_cmaes_without_its_package_is_a_setup_error() -> None:
    result = cli(
        "run",
        "repro_check.examples.quadratic:objective",
        "--runs",
        "2",
        "--trials",
        "10",
        "--sampler",
        "cmaes",
    )
    assert result.code == 2, result.out + result.err
    assert "pip install cmaes" in result.err and len(result.err.strip().splitlines()) == 1


# --- issue 8.9: the user's folder and file names do not shadow the worker's modules -----------


@pytest.mark.e2e
def test_json_and_random_in_the_current_folder_do_not_break_a_run(tmp_path: Path) -> None:
    for name in ("json", "random", "optuna"):
        (tmp_path / f"{name}.py").write_text("raise RuntimeError('the user file was imported')\n")
    (tmp_path / "mine.py").write_text(
        "def objective(trial):\n    return trial.suggest_float('x', -1.0, 1.0) ** 2\n"
    )
    out = tmp_path / "r.json"
    for target in ("repro_check.examples.quadratic:objective", "mine:objective"):
        result = cli("run", target, "--runs", "2", "--trials", "4", cwd=tmp_path, json_path=out)
        assert result.code == 0, result.out + result.err
        assert all(run["status"] == "ok" for run in json.loads(out.read_text())["runs"])


@pytest.mark.e2e
def test_a_target_file_named_like_an_installed_module(run_check) -> None:
    target = f"{FIXTURES / 'hostile_optuna' / 'optuna.py'}:objective"
    result = run_check(target, "--runs", "2", "--trials", "4")
    assert result.code == 0, result.out + result.err
    states = {t["state"] for run in result.report["runs"] for t in run["trials"]}
    assert states == {"COMPLETE"}  # the objective's own `import optuna` got the real one


# --- issues 8.6 and 8.7: process lifecycle -----------------------------------------------------


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pids: list[int], limit: float = 20.0) -> list[int]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


pytestmark_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")


@pytest.mark.e2e
@pytestmark_linux
def test_a_lingering_forked_child_neither_holds_the_check_nor_survives(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    result = cli(
        "run",
        fixture("hostile_fork_linger"),
        "--runs",
        "2",
        "--trials",
        "3",
        "--timeout",
        "60",
        env={"LINGER_PIDS": str(pids)},
        timeout=90,  # the children sleep 600 s: waiting for them would fail here
    )
    assert result.code == 0, result.out + result.err
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    assert _wait_dead(children) == []


@pytest.mark.e2e
@pytestmark_linux
def test_killing_the_parent_kills_its_workers() -> None:
    proc = spawn_cli("run", fixture("slow"), "--trials", "200", "--runs", "3", "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        time.sleep(1.0)  # let them read their jobs and start
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert _wait_dead(workers) == [], "workers outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.e2e
@pytest.mark.slow
def test_the_timeout_clock_starts_with_the_job_not_the_interpreter(tmp_path: Path) -> None:
    # every worker interpreter takes 6 s to start (the parent's start-up is no part of any job's
    # clock, so it is not slowed: where /proc is missing, every interpreter is); the study is fast
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import time\n"
        "try:\n"
        "    with open('/proc/self/cmdline', 'rb') as f:\n"
        "        worker = b'repro_check.execution.worker' in f.read()\n"
        "except OSError:\n"
        "    worker = True\n"
        "if worker:\n"
        "    time.sleep(6)\n"
    )
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    result = cli(
        "run",
        fixture("deterministic"),
        "--runs",
        "2",
        "--trials",
        "3",
        "--workers",
        "2",
        "--timeout",
        "5",
        env={"PYTHONPATH": path},
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    assert all(run["status"] == "ok" for run in result.report["runs"])
