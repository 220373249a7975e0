"""Shared helpers: run the real ``repro-check`` command in a subprocess (``cli``) or in this
process (``inprocess_cli``, for argument/input errors that stop before any worker starts), read
its JSON report."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Result:
    code: int
    out: str
    err: str
    report: Any  # the JSON report (a dict), None where none was written


def fixture(name: str, attr: str = "objective") -> str:
    return f"{FIXTURES / name}.py:{attr}"


GOLDEN_REPORTS = FIXTURES / "reports"
"""Reports real checks wrote (run from tests/fixtures), read by the in-process tests of saved
reports; ``tests/test_golden_reports.py`` regenerates each and checks it is current."""


def golden_report(name: str, target: str) -> dict[str, Any]:
    """A golden report, its target made this checkout's path (as the tests would have run it)."""
    data: dict[str, Any] = json.loads((GOLDEN_REPORTS / f"{name}.json").read_text())
    data["target"] = target
    return data


def cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    json_path: Path | None = None,
    timeout: float = 120,
) -> Result:
    """Run ``python -m repro_check ARGS`` with pinned NO_COLOR/COLUMNS, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    full_env.pop("GITHUB_STEP_SUMMARY", None)
    argv = [sys.executable, "-m", "repro_check", *args]
    if json_path is not None:
        argv += ["--json", str(json_path)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout
    )
    report = None
    if json_path is not None and json_path.exists():
        report = json.loads(json_path.read_text())
    return Result(proc.returncode, proc.stdout, proc.stderr, report)


def inprocess_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    json_path: Path | None = None,
) -> Result:
    """``cli(...)`` without a new interpreter: ``repro_check.cli.main([...])`` with captured
    stdout/stderr, the SystemExit code, NO_COLOR/COLUMNS pinned, the SIGTERM handler and the
    environment/working folder restored afterwards. For checks that stop before running."""
    from repro_check import cli as cli_module

    argv = [*args]
    if json_path is not None:
        argv += ["--json", str(json_path)]
    overrides = {"NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_sigterm = signal.getsignal(signal.SIGTERM)
    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    try:
        os.environ.update(overrides)
        os.environ.pop("GITHUB_STEP_SUMMARY", None)
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli_module.main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGTERM, saved_sigterm)
    report = None
    if json_path is not None and json_path.exists():
        report = json.loads(json_path.read_text())
    return Result(code, out.getvalue(), err.getvalue(), report)


def report_studies(report: dict[str, Any], run: int = 0) -> list[dict[str, Any]]:
    """A script check's studies in one run of its JSON report."""
    return report["runs"][run]["studies"]  # type: ignore[no-any-return]


def trial_count(report: dict[str, Any], run: int, study: int) -> int:
    """A run's first study keeps its trials in the run's ``trials`` (its own is null)."""
    record = report_studies(report, run)[study]
    trials = record["trials"] if record["trials"] is not None else report["runs"][run]["trials"]
    return len(trials)


def one_line_error(result: Result, fragment: str = "") -> str:
    """The command refused its input: exit 2, one ``error:`` line holding ``fragment``, no
    traceback. Returns that line."""
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    assert fragment in lines[0], lines[0]
    return lines[0]


def spawn_cli(*args: str) -> subprocess.Popen[str]:
    """Start ``python -m repro_check ARGS`` without waiting (for signals and concurrency)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "repro_check", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def run_check(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``run_check(target, *flags)`` → Result with the JSON report loaded."""

    def go(target: str, *flags: str, **kwargs: Any) -> Result:
        out = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
        return cli("run", target, *flags, json_path=out, **kwargs)

    return go


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """For tests that import what they write: cwd = tmp_path; sys.path and sys.modules are
    restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()


def diagnosed(target: str, folder: Path) -> list[dict[str, Any]]:
    """``repro-check diagnose TARGET --json`` run in ``folder``: its causes (it must end 0)."""
    out = folder / "diagnose.json"
    result = cli("diagnose", target, "--json", str(out), cwd=folder, timeout=600)
    assert result.code == 0, result.out + result.err
    causes: list[dict[str, Any]] = json.loads(out.read_text())["causes"]
    return causes


def code_lines(fix: str) -> list[str]:
    return [ln for ln in fix.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def check_fix_text(cause: dict[str, Any]) -> None:
    """The printed fix shows its edits' code and parses; no code line has a placeholder."""
    import ast

    fix = str(cause["fix"])
    assert not any("..." in ln.split("#", 1)[0] for ln in code_lines(fix)), fix
    assert (cause["edit"] is None) == (not cause["edits"]), cause
    for edit in cause["edits"]:
        assert edit["code"] in fix, fix
        ast.parse(edit["code"])
    if cause["edits"]:
        ast.parse(fix)  # comments and the code: valid Python as printed


def pasted(copy: Path, causes: list[dict[str, Any]], target: str, *flags: str) -> None:
    """Every cause's printed fix checked, its edits applied to ``copy`` (diagnosed in its
    own folder): then ``repro-check run TARGET FLAGS`` there must pass (issue 22, item 6)."""
    from repro_check.checks.causes.edits import apply_edits
    from repro_check.results.diagnosis import Edit

    for cause in causes:
        check_fix_text(cause)
    edits = [Edit(**edit) for cause in causes for edit in cause["edits"]]
    # an edit names the file as the user would (relative to the folder diagnose ran in)
    assert {(copy.parent / e.file).resolve() for e in edits} <= {copy.resolve()}
    copy.write_text(apply_edits(copy.read_text(), edits))
    check = cli("run", target, *flags, cwd=copy.parent, timeout=600)
    assert check.code == 0, copy.read_text() + check.out + check.err


def write_source(path: Path, text: str) -> Path:
    """A module or script written where ``sandbox`` tests import it from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    importlib.invalidate_caches()
    return path


def has_cuda() -> bool:
    """Whether torch sees a GPU. Asked at every collection, in every xdist worker, so it first
    rules out the cases that need no ``import torch`` (2-3 s of CPU each time): no torch, a CPU
    build (its version ends in ``+cpu``), or no GPU device node (NVIDIA's, ROCm's, or WSL's
    ``/dev/dxg``)."""
    import glob
    import importlib.metadata

    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    nodes = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg")
    if version.endswith("+cpu") or not any(glob.glob(node) for node in nodes):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package's and the fixtures' bytecode once, in the controlling process,
    before any test starts an interpreter; give the commands the suite starts a Ctrl-C.

    The suite starts a thousand interpreters and more (commands and their workers). An editable
    install ships no ``.pyc`` files, and where ``PYTHONDONTWRITEBYTECODE`` is set (as on this
    project's machines) no interpreter writes one, so each compiled repro_check's modules from
    source again: a 2-run check took 1.93 s of CPU instead of 1.63 s. Explicit compilation
    writes the cache whatever that variable says; every later process reads it, as it would
    read the ``.pyc`` files of a wheel install."""
    ProcessWatch.install()
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Started with SIGINT ignored (under nohup, or `&` in a script): every command the suite
        # starts would inherit that and ignore the Ctrl-C the interrupt tests send it. A handler
        # here is reset to the default in each child, which Python then turns into
        # KeyboardInterrupt as it would for a user's terminal.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Under GitHub Actions every command prints workflow annotations after its report; the
    # tests pin output as anywhere else (a test that wants annotations sets the variable). Set
    # for the whole session, so a command and the run by hand it is compared with agree.
    os.environ.pop("GITHUB_ACTIONS", None)
    if hasattr(config, "workerinput"):  # an xdist worker: the controller compiled already
        return
    import compileall

    import repro_check

    for folder in (Path(repro_check.__file__).parent, FIXTURES):
        compileall.compile_dir(folder, quiet=2)  # 2: not even the syntax-error fixtures


class ProcessWatch:
    """Which test started a process. The fast tier (``pytest -m "not e2e"``) is the tests that
    start none, so a test that does must say so with ``@pytest.mark.e2e``: an unmarked one
    fails here rather than slowing the tier a developer runs on every change. A fixture that
    starts one (a module fixture running a real check, say) makes every test using it e2e,
    whichever of them happened to set it up first."""

    current: str | None = None
    started: ClassVar[set[str]] = set()
    fixtures: ClassVar[set[str]] = set()
    """Fixtures whose setup started a process."""
    count = 0

    @classmethod
    def install(cls) -> None:
        """Watch from now on. The standard library's own one-time probes (``platform``'s
        ``uname -p``) run first, so whichever test happens to trigger them is not charged."""
        import multiprocessing.util
        import platform

        platform.processor()

        def watched(original: Any) -> Any:
            def start(*args: Any, **kwargs: Any) -> Any:
                cls.count += 1
                if cls.current is not None:
                    cls.started.add(cls.current)
                return original(*args, **kwargs)

            return start

        subprocess.Popen._execute_child = watched(subprocess.Popen._execute_child)  # type: ignore[attr-defined]
        os.fork = watched(os.fork)
        multiprocessing.util.spawnv_passfds = watched(multiprocessing.util.spawnv_passfds)

    @classmethod
    def needs_mark(cls, item: pytest.Item) -> bool:
        uses = set(getattr(item, "fixturenames", ()))
        started = item.nodeid in cls.started or bool(uses & cls.fixtures)
        return started and "e2e" not in item.keywords


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    ProcessWatch.current = item.nodeid
    try:
        return (yield)
    finally:
        ProcessWatch.current = None


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    before = ProcessWatch.count
    try:
        return (yield)
    finally:
        if ProcessWatch.count > before:
            ProcessWatch.fixtures.add(fixturedef.argname)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """After teardown: a test that started a process (in its fixtures or its body) without
    the ``e2e`` mark fails, with the mark to add."""
    report = yield
    if call.when == "teardown" and report.passed and ProcessWatch.needs_mark(item):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started a process: mark it @pytest.mark.e2e (the fast tier, "
            '`pytest -m "not e2e"`, is the tests that start none)'
        )
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``slow`` tests go first (xdist then spreads the long ones over its workers from the
    start, instead of one of them ending the suite alone); tests marked ``cuda`` skip, with the
    reason, where torch sees no GPU."""
    items.sort(key=lambda item: "slow" not in item.keywords)  # stable: same order in every worker
    if has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
