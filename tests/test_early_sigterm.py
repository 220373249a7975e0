"""SIGTERM in the first moments of ``repro-check`` (CI cancelling a job) exits 130 with one line.

The handler must be in place before typer, click and rich are imported. The child runs with
``-X importtime``, which writes a line to stderr as each import finishes, so the test strikes at
a known point (while typer, and the click it brings, is being imported) instead of guessing a
delay.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import fixture, spawn_cli

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ENTRY_POINTS = {
    "python -m": ["-m", "repro_check"],
    # what the console script pip generates from [project.scripts] does
    "console script": [
        "-c",
        "import sys; sys.argv[0] = 'repro-check'; "
        "from repro_check.__main__ import main; sys.exit(main())",
    ],
}


def strike_during_import(entry: list[str], module: str) -> tuple[int, str]:
    """Send SIGTERM as soon as an import of ``module`` (or, ending in ".", of any module under
    it) has finished; (exit code, the non-importtime stderr)."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    argv = [sys.executable, "-X", "importtime", *entry, "run", fixture("deterministic")]
    proc = subprocess.Popen(
        [*argv, "--trials", "2", "--runs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            name = line.rsplit("|", 1)[-1].strip()
            hit = name.startswith(module) if module.endswith(".") else name == module
            if line.startswith("import time:") and hit:
                proc.send_signal(signal.SIGTERM)
                break
        else:
            pytest.fail(f"{module} was never imported")
        _out, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    messages = [
        line for line in [*seen, *rest.splitlines(True)] if not line.startswith("import time:")
    ]
    return proc.returncode, "".join(messages)


@pytest.mark.e2e
@pytest.mark.parametrize("entry", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
@pytest.mark.parametrize("module", ["typer.", "typer"])  # typer's first submodule, typer
def test_sigterm_while_the_command_line_loads(entry: list[str], module: str) -> None:
    code, messages = strike_during_import(entry, module)
    assert code == 130, f"exit {code} (-15 is death by SIGTERM): {messages}"
    assert "Traceback" not in messages
    assert messages.strip() == "interrupted", messages


def test_console_script_uses_the_early_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["repro-check"] == "repro_check.__main__:main"


@pytest.mark.e2e
def test_sigterm_stops_the_workers(tmp_path: Path) -> None:
    proc = spawn_cli("run", fixture("slow"), "--trials", "40", "--runs", "2")
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    time.sleep(0.5)
    leftover = subprocess.run(
        ["pgrep", "-f", "repro_check.execution.worker"], capture_output=True, text=True
    )
    assert str(proc.pid) not in leftover.stdout


INTERRUPT_IN_STRING_EXEC = """
import sys

class _InterruptTyper:
    # as SIGTERM striking while a dataclass or namedtuple builds its methods with a string exec
    def find_spec(self, name, path=None, target=None):
        if name == "typer":
            exec("raise KeyboardInterrupt", {})
        return None

sys.meta_path.insert(0, _InterruptTyper())
"""


@pytest.mark.e2e
@pytest.mark.parametrize("entry", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_interrupt_ending_a_string_exec_exits_130(entry: list[str], tmp_path: Path) -> None:
    """CPython flags a KeyboardInterrupt that ends a string ``exec`` and, under ``python -m``,
    kills itself with SIGINT at exit even though the interrupt was caught (exit -2, seen in CI
    when SIGTERM struck during typer's import)."""
    (tmp_path / "sitecustomize.py").write_text(INTERRUPT_IN_STRING_EXEC)
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    proc = subprocess.run(
        [sys.executable, *entry, "run", fixture("deterministic"), "--trials", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 130, f"exit {proc.returncode} (-2 is death by SIGINT): {proc.stderr}"
    assert proc.stderr.strip() == "interrupted", proc.stderr
