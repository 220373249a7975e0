"""Script mode streams live (issue 21 items 2 and 3): each study is announced as the script makes
it and each trial reaches the parent as the script tells it, so progress counts, --fail-fast
stops at the first differing trial and a timed-out or interrupted run keeps what it finished
(and says where it stopped), while the end-of-script record is still checked against every
trial that streamed. A failed run shows the last lines of its output without -v.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, spawn_cli

from repro_check.execution.protocol import PROTOCOL_VERSION, content_digest, trial_hash
from repro_check.execution.stream import StreamCheck
from repro_check.results.records import trials_digest
from repro_check.results.trial_record import TrialRecord

SCRIPTS = FIXTURES / "scripts"
LIVE = str(SCRIPTS / "live_trials.py")


def live_env(**values: object) -> dict[str, str]:
    return {f"LIVE_{name.upper()}": str(value) for name, value in values.items()}


# --- the parent's check of a live script stream, line by line ------------------------------------

NONCE = "n" * 32
PID = 4242


def line(event: str, **data: object) -> bytes:
    if event == "started":
        data.setdefault("version", PROTOCOL_VERSION)
    return (json.dumps({"event": event, "nonce": NONCE, "pid": PID, **data}) + "\n").encode()


def info(name: str) -> dict[str, Any]:
    return {"name": name, "directions": ["minimize"], "sampler": {"class": "RandomSampler"}}


def trial(number: int, study: int = 0, value: float | None = None) -> dict[str, Any]:
    value = float(number) if value is None else value
    return TrialRecord(number, "COMPLETE", {"x": value}, (value,)).to_dict()


def study_done(study: int, trials: list[dict[str, Any]], emitted: int | None = None) -> bytes:
    """The end-of-script summary of ``study``, as the worker's own study holds ``trials``."""
    return line(
        "study_done",
        study=study,
        emitted=len(trials) if emitted is None else emitted,
        count=len(trials),
        digest=trials_digest((t["number"], t["state"]) for t in trials),
        stopped=False,
        info=info("ab"[study]),
        content=content_digest((t["number"], trial_hash(t)) for t in trials),
    )


def fed(*lines: bytes) -> StreamCheck:
    check = StreamCheck(NONCE, PID, 0)
    for raw in lines:
        check.feed(raw)
    return check


def test_two_studies_interleaved_then_checked_at_the_end() -> None:
    a, b = [trial(0), trial(1)], [trial(0, 1)]
    check = fed(
        line("started"),
        line("study_info", study=0, info=info("a")),
        line("trial", study=0, trial=a[0]),
        line("study_info", study=1, info=info("b"), planned=1),
        line("trial", study=1, trial=b[0]),
        line("study_info", study=0, info=info("a"), planned=2),  # optimize asked for 2
        line("trial", study=0, trial=a[1]),
    )
    assert check.broken is None, check.broken
    assert [len(t) for t in check.trials] == [2, 1] and check.last == (0, 1)
    assert check.planned == [2, 1] and check.planned_total() == 3
    check.feed(study_done(0, a))
    check.feed(study_done(1, b))
    check.feed(line("done", studies=2))
    assert check.broken is None and check.done is not None
    assert check.study_problem(0, None) is None and check.study_problem(1, None) is None


def test_a_streamed_trial_the_final_study_disagrees_with_is_a_problem() -> None:
    streamed = trial(0, value=1.0)
    final = trial(0, value=2.0)  # same number and state: only the fields tell
    check = fed(
        line("started"),
        line("study_info", study=0, info=info("a")),
        line("trial", study=0, trial=streamed),
        study_done(0, [final]),
        line("done", studies=1),
    )
    assert check.broken is None
    assert check.study_problem(0, None) == (
        "a trial streamed while the script ran differs from what the study held at the script's end"
    )


def test_a_summary_without_the_trials_digest_is_a_problem() -> None:
    done = json.loads(study_done(0, [trial(0)]))
    done.pop("content")
    check = fed(
        line("started"),
        line("study_info", study=0, info=info("a")),
        line("trial", study=0, trial=trial(0)),
        (json.dumps(done) + "\n").encode(),
    )
    assert check.broken is None and check.study_problem(0, None) is not None


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([line("trial", study=0, trial=trial(0))], "while 0 studies were announced and 0 done"),
        ([line("study_info", study=1, info=info("b"))], "for study 1 while 0 studies"),
        (
            [line("study_info", study=0, info=info("a")), study_done(1, [])],
            "'study_done' event for study 1",
        ),
        (
            [line("study_info", study=0, info=info("a")), study_done(0, []), study_done(0, [])],
            "'study_done' event for study 0 while 1 studies were announced and 1 done",
        ),
        (
            [
                line("study_info", study=0, info=info("a")),
                study_done(0, []),
                line("trial", study=0, trial=trial(0)),
            ],
            "'trial' event for study 0 while 1 studies were announced and 1 done",
        ),
        (
            [
                line("study_info", study=0, info=info("a")),
                line("study_info", study=1, info=info("b")),
                study_done(0, []),
                line("done", studies=1),
            ],
            "'done' after 1 studies",
        ),
        ([line("study_info", study=0, info={"directions": 3})], "malformed info"),
    ],
)
def test_a_live_script_stream_out_of_order_breaks(lines: list[bytes], reason: str) -> None:
    check = fed(line("started"), *lines)
    assert check.broken is not None and reason in check.broken, check.broken


def test_an_objective_job_takes_no_study_info() -> None:
    check = StreamCheck(NONCE, PID, 1)
    check.feed(line("started"))
    check.feed(line("study_info", study=0, info=info("a")))
    assert check.broken == "a 'study_info' event for a job that runs no script"


# --- end to end ----------------------------------------------------------------------------


def run_live(tmp_path: Path, *flags: str, **env: object) -> Any:
    out = tmp_path / "report.json"
    return cli("run", LIVE, "--runs", "2", *flags, json_path=out, env=live_env(**env))


@pytest.mark.e2e
def test_progress_counts_each_trial_as_the_script_tells_it() -> None:
    from repro_check.checks.run import run_check
    from repro_check.execution.jobs import Progress
    from repro_check.plan.config import build_plan

    events: list[tuple[float, Progress]] = []
    plan = build_plan(LIVE, {"runs": 2, "workers": 1}, None)
    os.environ.update(live_env(trials=3, pause=0.3))
    try:
        report = run_check(plan, lambda p: events.append((time.monotonic(), p)))
    finally:
        for name in live_env(trials=0, pause=0):
            os.environ.pop(name, None)
    assert report.reproducible
    running = [p for _, p in events if p.job == 0 and p.status is None and not p.queued]
    counts = sorted({(p.done, p.total) for p in running})
    # trials counted one by one before the run ended, toward the script's n_trials
    assert [c for c in counts if c[0] > 0] == [(1, 3), (2, 3), (3, 3)], counts
    ended = next(t for t, p in events if p.job == 0 and p.status is not None)
    third = next(t for t, p in events if p.job == 0 and p.done == 3)
    assert third <= ended


@pytest.mark.e2e
def test_fail_fast_stops_a_script_at_the_first_differing_trial(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_live(tmp_path, "--fail-fast", trials=40, pause=0.25, part=1)
    took = time.monotonic() - start
    assert result.code == 1, result.out
    assert "NOT REPRODUCIBLE: runs part at trial 1 (values)" in result.out
    assert "--fail-fast: stopped every run at the first certain divergence" in result.out
    report = result.report
    assert report["stopped_early"] is True
    assert all(run["status"] == "cancelled" for run in report["runs"])
    assert all(len(run["trials"]) < 40 for run in report["runs"])
    assert took < 40 * 0.25, took  # far from the 10 s the script would take


@pytest.mark.e2e
def test_fail_fast_watches_each_study_apart(tmp_path: Path) -> None:
    # study 0 'warmup' agrees; study 1 'a' parts at its trial 1: compared study by study
    result = run_live(tmp_path, "--fail-fast", warmup=3, trials=40, pause=0.25, part=1)
    assert result.code == 1, result.out
    assert "NOT REPRODUCIBLE: 'a' (study 1): runs part at trial 1 (values)" in result.out
    for run in result.report["runs"]:
        assert run["status"] == "cancelled"
        assert len(run["trials"]) == 3  # the warmup study, whole
        assert 2 <= len(run["studies"][1]["trials"]) < 40


@pytest.mark.e2e
def test_a_shared_check_stopped_in_a_later_study_is_not_reproducible(tmp_path: Path) -> None:
    """Through a storage the report is rebuilt from the stored runs; --fail-fast's stop in
    study 1 must read as the divergence it is (exit 1), not as runs that did not finish (a
    review found exit 3: only study 0's divergence counted there)."""
    storage = f"sqlite:///{tmp_path / 'ff.db'}"
    flags = ("--fail-fast", "--storage", storage, "--name", "ff")
    result = run_live(tmp_path, *flags, warmup=2, trials=12, pause=0.1, part=2)
    assert result.code == 1, result.out + result.err
    assert "NOT REPRODUCIBLE: 'a' (study 1): runs part at trial 2" in result.out


@pytest.mark.e2e
def test_a_timed_out_script_keeps_and_compares_its_finished_trials(tmp_path: Path) -> None:
    result = run_live(tmp_path, "--timeout", "1.5", trials=30, pause=0.25)
    assert result.code == 3, result.out
    report = result.report
    kept = [len(run["trials"]) for run in report["runs"]]
    assert all(n >= 2 for n in kept), kept
    for run in report["runs"]:
        assert run["status"] == "timeout"
        last = len(run["trials"]) - 1
        assert run["error"] == f"timed out after 1.5 s (--timeout), after trial {last} of study 'a'"
    assert "INCOMPLETE: 2 of 2 runs did not finish; no divergence among the trials" in result.out
    assert re.search(
        r"run 0 timeout: timed out after 1\.5 s \(--timeout\), after trial \d+ of", result.out
    )
    assert "the runs agree" in result.out


@pytest.mark.e2e
def test_a_timed_out_script_that_parted_reports_the_divergence(tmp_path: Path) -> None:
    result = run_live(tmp_path, "--timeout", "1.5", trials=30, pause=0.25, part=1)
    assert result.code == 3, result.out  # incomplete, yet the divergence among them is shown
    assert "First divergence: trial 1, values" in result.out
    assert "distinct histories: 2 of 2" in result.out


@pytest.mark.e2e
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_at_half_keeps_the_finished_trials_in_the_report(tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"  # outside the working folder: not a write of the check's
    report_path = tmp_path / "report.json"
    env = live_env(trials=20, pause=0.3, marks=marks)
    os.environ.update(env)
    try:
        proc = spawn_cli("run", LIVE, "--runs", "2", "--json", str(report_path))
    finally:
        for name in env:
            os.environ.pop(name, None)
    try:
        deadline = time.monotonic() + 60
        # each run has started its 6th trial: trials 0..4 were told (and streamed) in both
        while time.monotonic() < deadline:
            seen = marks.read_text().splitlines() if marks.exists() else []
            if sum(1 for m in seen if m.startswith("start") and int(m.split()[2]) >= 5) >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "INTERRUPTED: 0 of 2 runs had finished; the rest were stopped" in out
    report = json.loads(report_path.read_text())
    assert report["interrupted"] is True
    for run in report["runs"]:
        assert run["status"] == "cancelled"
        assert 5 <= len(run["trials"]) < 20, run["trials"]
        last = len(run["trials"]) - 1
        assert run["error"] == f"stopped before it finished, after trial {last} of study 'a'"
        assert f"run {run['index']} cancelled: stopped before it finished, after trial" in out
    assert "the runs agree" in out  # the finished trials are compared


@pytest.mark.e2e
def test_a_script_that_fails_shows_the_end_of_its_output(tmp_path: Path) -> None:
    result = cli("run", str(SCRIPTS / "needs_data.py"), "--runs", "2")
    assert result.code == 3, result.out
    lines = result.out.splitlines()
    at = lines.index("  • run 0 error: the script called sys.exit(2); its output ended with:")
    assert lines[at + 1 : at + 4] == [
        "      | usage: needs_data.py [-h] --data DATA",
        "      | needs_data.py: error: the following arguments are required: --data",
        "      (-v shows all of its output)",
    ]


def test_the_end_of_a_failed_runs_output_is_bounded_and_escaped(tmp_path: Path) -> None:
    from repro_check.execution.process import WorkerProcess

    worker = WorkerProcess.__new__(WorkerProcess)
    worker.stderr = (tmp_path / "err").open("w+b")
    lines = [f"line {i}" for i in range(8)] + ["\x1b[2Jcleared\r", "x" * 500, "", "  "]
    worker.stderr.write("\n".join(lines).encode())
    shown = worker.stderr_tail()
    assert shown == ["line 5", "line 6", "line 7", "\\x1b[2Jcleared", "x" * 197 + "..."]
    message = worker.with_output("the script raised ValueError")
    assert message.splitlines()[0] == "the script raised ValueError; its output ended with:"
    assert message.splitlines()[-1] == "  (-v shows all of its output)"
    worker.stderr.close()


def test_progress_of_a_script_shows_counts_then_a_total_to_go_by() -> None:
    from repro_check.execution.jobs import Progress
    from repro_check.render.progress import Bars

    bars = Bars()
    bars.update(Progress(0, 0, 0, queued=True))
    bars.update(Progress(1, 0, 0, queued=True))
    bars.update(Progress(0, 2, 0))  # trials counted before the script said how many
    assert bars.shown(("", 0)) and bars.shown(("", 1))
    assert (bars.trials_done, bars.trials_planned) == (2, 0)  # 0: unknown, no ETA yet
    bars.update(Progress(0, 3, 30))  # its optimize(n_trials=30): the queued run plans alike
    assert (bars.trials_done, bars.trials_planned) == (3, 60)
    bars.update(Progress(1, 0, 0, status="cancelled"))  # stopped before it started
    assert not bars.shown(("", 1)) and bars.trials_planned == 30
