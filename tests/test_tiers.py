"""The fast tier (``pytest -m "not e2e"``) holds the tests that start no process; conftest's
``ProcessWatch`` fails an unmarked test that starts one. These prove the watch sees each way a
test starts a process, so a test that slips through cannot slow the tier unnoticed."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import pytest
from conftest import ProcessWatch


@pytest.mark.e2e
def test_the_watch_sees_a_subprocess(request: pytest.FixtureRequest) -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert request.node.nodeid in ProcessWatch.started


@pytest.mark.e2e
def test_the_watch_sees_a_spawned_multiprocessing_child(request: pytest.FixtureRequest) -> None:
    child = multiprocessing.get_context("spawn").Process(target=print)
    child.start()
    child.join()
    assert request.node.nodeid in ProcessWatch.started


def test_a_test_that_starts_nothing_is_not_counted(request: pytest.FixtureRequest) -> None:
    assert request.node.nodeid not in ProcessWatch.started
