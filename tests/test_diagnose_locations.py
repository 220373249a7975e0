"""Issue 12: diagnose names the line where the randomness enters (the entropy audit), for
objectives and scripts, and a clean objective gets no located cause."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, fixture

ENTROPY = FIXTURES / "entropy"


def diagnose(target: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    out = tmp_path / "diagnose.json"
    # a torch diagnosis starts ~20 interpreters that import torch: minutes on a loaded machine
    result = cli("diagnose", target, *flags, "--json", str(out), timeout=300)
    assert result.code == 0, result.out + result.err
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "line", "fix"),
    [
        ("default_rng", 8, "np.random.default_rng() has no seed: np.random.default_rng(0)"),
        ("urandom_late", 9, "os.urandom differs in every process"),
        ("secrets_noise", 7, "secrets.randbelow differs in every process"),
        ("unseeded_random", 7, "random.Random() has no seed: random.Random(0)"),
        ("uuid_noise", 7, "uuid.uuid4 differs in every process"),
    ],
)
def test_each_entropy_source_is_named_at_its_line(
    name: str, line: int, fix: str, tmp_path: Path
) -> None:
    diagnosis = diagnose(f"{ENTROPY / name}.py:objective", tmp_path, "--trials", "16")
    causes = diagnosis["causes"]
    assert [c["id"] for c in causes] == ["objective_noise"]
    location = causes[0]["location"]
    assert location is not None and location["line"] == line
    assert location["file"].endswith(f"{name}.py")
    assert fix in causes[0]["fix"] and causes[0]["fix"].split(":")[1] == str(line)
    assert_pastes(causes[0])


def assert_pastes(cause: dict[str, Any]) -> None:
    """Issue 22, item 6: the printed fix is valid Python (comments, and the edit's code when
    a seed argument fixes the line), and an edit is the line it names, seeded."""
    ast.parse(cause["fix"])
    edit = cause["edit"]
    if edit is not None:
        assert edit["code"] in cause["fix"] and edit["line"] == cause["location"]["line"]
        assert "(seed=0)" in edit["code"] or "=0)" in edit["code"]


@pytest.mark.e2e
def test_the_line_of_an_unseeded_generator_is_the_edit(tmp_path: Path) -> None:
    diagnosis = diagnose(f"{ENTROPY / 'default_rng'}.py:objective", tmp_path, "--trials", "8")
    (cause,) = diagnosis["causes"]
    assert cause["edit"] is not None
    assert "np.random.default_rng(seed=0)" in cause["edit"]["code"]
    assert_pastes(cause)


@pytest.mark.e2e
def test_a_wall_clock_budget_is_named_as_a_suspect(tmp_path: Path) -> None:
    diagnosis = diagnose(f"{ENTROPY / 'clock_budget.py'}:objective", tmp_path, "--trials", "8")
    lines = sorted(c["location"]["line"] for c in diagnosis["causes"])
    assert lines == [8, 10]
    assert all("reads the clock" in c["fix"] for c in diagnosis["causes"])


@pytest.mark.e2e
def test_the_audit_locates_noise_in_a_script(tmp_path: Path) -> None:
    diagnosis = diagnose(str(ENTROPY / "script_default_rng.py"), tmp_path)
    located = [c for c in diagnosis["causes"] if c["location"] is not None]
    assert [c["location"]["line"] for c in located] == [8]
    assert "default_rng() has no seed" in located[0]["fix"]


@pytest.mark.e2e
def test_a_clean_objective_gets_no_located_cause(tmp_path: Path) -> None:
    diagnosis = diagnose(fixture("deterministic"), tmp_path, "--trials", "6")
    assert all(c["location"] is None for c in diagnosis["causes"])


@pytest.mark.e2e
def test_the_line_tracer_finds_where_two_processes_part(tmp_path: Path) -> None:
    """A generator seeded from the process id: no source the audit knows, so the noise probe
    and the line tracer find the line (``seed = os.getpid()``) and the local that differs."""
    diagnosis = diagnose(f"{ENTROPY / 'pid_seed.py'}:objective", tmp_path, "--trials", "5")
    cause = diagnosis["causes"][0]
    assert cause["id"] == "objective_noise"
    assert cause["location"]["line"] == 10
    assert cause["location"]["source"] == "seed = os.getpid()"
    assert "first line where two processes part" in cause["evidence"]
    assert "seed = " in cause["evidence"]
    assert "line_trace" in [e["id"] for e in diagnosis["experiments"]]


def test_first_split_names_the_line_that_set_the_differing_local() -> None:
    from repro_check.execution.linetrace import first_split

    a = [["f.py", 3, {}], ["f.py", 4, {"x": ["i:1", "1"]}], ["f.py", 5, {"x": ["i:1", "1"]}]]
    b = [["f.py", 3, {}], ["f.py", 4, {"x": ["i:2", "2"]}], ["f.py", 5, {"x": ["i:2", "2"]}]]
    split = first_split(a, b)
    assert split is not None and (split.line, split.local, split.values) == (3, "x", ("1", "2"))
    assert first_split(a, a) is None
    paths = [["f.py", 3, {}], ["f.py", 9, {}]]
    other = first_split(a, paths)
    assert other is not None and other.line == 3 and other.local is None


def test_run_never_audits_nor_traces() -> None:
    from repro_check.execution.replicates import replicate_jobs
    from repro_check.plan.config import build_plan

    plan = build_plan(fixture("deterministic"), {}, pyproject=False)
    jobs = replicate_jobs(plan)
    assert jobs and not any(job.audit or job.trace for job in jobs)
    assert not any(job.spec("t", 1, "cpu").trace for job in jobs)


@pytest.mark.e2e
@pytest.mark.slow  # torch in every worker
def test_the_first_differing_torch_op_is_named(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    diagnosis = diagnose(f"{ENTROPY / 'torch_pid.py'}:objective", tmp_path, "--trials", "4")
    cause = diagnosis["causes"][0]
    assert cause["location"]["line"] == 11
    assert "first torch op whose output differs: aten.randn" in cause["evidence"]
    assert "torch_pid.py:11" in cause["evidence"]


def _lines(name: str) -> list[str]:
    return (ENTROPY / f"{name}.py").read_text().splitlines()


def assert_located(diagnosis: dict[str, Any], name: str, fixes: dict[int, str]) -> None:
    """Every cause is objective_noise located in the fixture; each line of ``fixes`` is one of
    them, with its source line and a fix written for it that says ``fixes[line]``."""
    causes = diagnosis["causes"]
    assert causes and {c["id"] for c in causes} == {"objective_noise"}
    by_line = {}
    for cause in causes:
        location = cause["location"]
        assert location is not None and location["file"].endswith(f"{name}.py"), cause
        by_line[location["line"]] = cause
    for line, fix in fixes.items():
        assert line in by_line, (line, sorted(by_line))
        cause = by_line[line]
        assert cause["location"]["source"] == _lines(name)[line - 1].strip()
        assert fix in cause["fix"] and cause["fix"].split(":")[1] == str(line)
        assert_pastes(cause)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "fixes"),
    [
        ("datetime_now", {8: "datetime.now() reads the clock"}),
        (
            "datetime_today",
            {
                8: "datetime.utcnow() reads the clock",
                9: "datetime.today() reads the clock",
                10: "date.today() reads the clock",
            },
        ),
        (
            "time_reads",
            {
                8: "time.time() reads the clock",
                9: "time.time_ns() reads the clock",
                10: "time.monotonic() reads the clock",
                11: "time.process_time() reads the clock",
            },
        ),
        ("system_random", {8: "random.SystemRandom differs in every process"}),
        ("uuid1_noise", {7: "uuid.uuid1 differs in every process"}),
        (
            "seed_sequence",
            {8: "np.random.SeedSequence() has no entropy: np.random.SeedSequence(0)"},
        ),
        (
            "random_state",
            {
                8: "np.random.RandomState() has no seed: np.random.RandomState(0)",
                9: "np.random.RandomState() has no seed: np.random.RandomState(0)",
            },
        ),
        (
            "global_reseed",
            {
                11: "random.seed() has no seed: random.seed(0)",
                12: "np.random.seed() has no seed: np.random.seed(0)",
            },
        ),
        (
            "threads",
            {
                11: "threading.Thread.start: results that depend on the order",
                13: "ThreadPoolExecutor: results that depend on the order",
                14: "threading.Thread.start: results that depend on the order",
            },
        ),
    ],
)
def test_every_audited_source_is_named_at_its_line(
    name: str, fixes: dict[int, str], tmp_path: Path
) -> None:
    """Issue 12: each source of run-to-run variation the audit knows, one fixture each (the
    clock reads and thread starts a few to a fixture), named at the user's line. Exactly those
    lines: the library code they go through (Optuna's own clock reads, the pool's threads) is
    not the user's."""
    diagnosis = diagnose(f"{ENTROPY / name}.py:objective", tmp_path, "--trials", "4")
    assert_located(diagnosis, name, fixes)
    assert sorted(c["location"]["line"] for c in diagnosis["causes"]) == sorted(fixes)


@pytest.mark.e2e
def test_process_pools_and_processes_are_named_at_their_lines(tmp_path: Path) -> None:
    """ProcessPoolExecutor, multiprocessing.Pool and multiprocessing.Process: each named at
    the line that made it (the pool's submit line also starts its processes and threads)."""
    diagnosis = diagnose(f"{ENTROPY / 'processes.py'}:objective", tmp_path, "--trials", "3")
    assert_located(
        diagnosis,
        "processes",
        {
            10: "ProcessPoolExecutor: results that depend on the order",
            12: "multiprocessing.Pool: results that depend on the order",
            15: "multiprocessing.Process.start: results that depend on the order",
        },
    )


@pytest.mark.e2e
@pytest.mark.slow  # torch in every worker
def test_torch_seed_and_generator_seed_are_named(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    diagnosis = diagnose(f"{ENTROPY / 'torch_seeds.py'}:objective", tmp_path, "--trials", "4")
    assert_located(
        diagnosis,
        "torch_seeds",
        {
            8: "torch.seed() seeds torch from the OS: torch.manual_seed(0)",
            10: "torch.Generator().seed() seeds the generator from the OS: call .manual_seed(0)",
        },
    )
    assert sorted(c["location"]["line"] for c in diagnosis["causes"]) == [8, 10]


@pytest.mark.e2e
def test_joblib_parallel_is_named_at_its_line(tmp_path: Path) -> None:
    pytest.importorskip("joblib")
    diagnosis = diagnose(f"{ENTROPY / 'joblib_parallel.py'}:objective", tmp_path, "--trials", "4")
    assert_located(
        diagnosis,
        "joblib_parallel",
        {10: "joblib.Parallel(n_jobs != 1): results that depend on the order"},
    )


STAND_INS = ENTROPY / "stand_ins.py"
PROBED = [
    "datetime.datetime.now",
    "datetime.date.today",
    "np.random.RandomState",
    "np.random.SeedSequence",
    "np.random.default_rng",
    "time.time",
    "os.urandom",
    "random.Random.__init__",
    "threading.Thread.start",
]
"""What audit_probe.py finds wrapped where the audit is installed."""


@pytest.mark.e2e
def test_the_stand_ins_pass_for_the_real_types(tmp_path: Path) -> None:
    """In diagnose's workers np.random.RandomState/SeedSequence and torch.Generator are the
    audit's stand-ins, and datetime's clock reads are wrapped on the real classes (which stay
    the module's: a stand-in there broke pandas): user code must not tell (isinstance, ==, dict
    keys, arithmetic, comparison, copies, pickles read back in a process without the audit,
    its own subclasses), the audit must not import torch, and each call is recorded at its
    line."""
    done = subprocess.run(
        [sys.executable, str(STAND_INS), str(ENTROPY / "audit_probe.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    probed, sites = (json.loads(line) for line in done.stdout.splitlines())
    assert probed == [*PROBED, "repro_check.execution.audit imported"]
    text = STAND_INS.read_text().splitlines()

    def line_of(code: str) -> int:
        return next(i + 1 for i, line in enumerate(text) if code in line)

    recorded = {tuple(site) for site in sites}
    assert ("datetime.now", line_of("now = datetime.now()")) in recorded
    assert ("datetime.utcnow", line_of("datetime.utcnow()")) in recorded
    assert ("date.today", line_of("date.today() <= now.date()")) in recorded
    assert ("np.random.RandomState() without a seed", line_of("state = np.random")) in recorded
    assert (
        "np.random.SeedSequence() without entropy",
        line_of("np.random.SeedSequence(), "),
    ) in recorded
    # numpy's own entropy draw (secrets.randbits) inside a seeded RandomState is not the user's
    assert line_of("seeded = np.random.RandomState(3)") not in {line for _, line in recorded}
    if importlib.util.find_spec("torch") is not None:
        assert ("torch.Generator().seed()", line_of("gen.seed()")) in recorded
        assert ("torch.seed()", line_of("    torch.seed()")) in recorded


@pytest.mark.e2e
def test_run_never_installs_the_audit(tmp_path: Path) -> None:
    """``run``'s workers get none of the audit's wrappers or stand-ins (the probe above shows
    it sees them where they are)."""
    out = tmp_path / "run.json"
    result = cli(
        "run",
        f"{ENTROPY / 'audit_probe.py'}:objective",
        "--runs",
        "2",
        "--trials",
        "3",
        "--json",
        str(out),
    )
    assert result.code == 0, result.out + result.err
    trials = [t for run in json.loads(out.read_text())["runs"] for t in run["trials"]]
    assert len(trials) == 6
    assert all(t["user_attrs"]["audited"] == [] for t in trials)
