"""The entropy audit under real libraries and real draws (issue item 4, parts 3 and 4): its
clock wrappers must leave ``datetime``'s classes alone (pandas subclasses them in C, and
scikit-learn imports pandas), and a global stream drawn from and then restored is still a
stream the objective depends on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli

SCRIPTS = FIXTURES / "scripts"


def diagnosed(target: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    out = tmp_path / "diagnose.json"
    result = cli("diagnose", target, *flags, "--json", str(out))
    # 3 was the audited runs crashing at ``import pandas``: a diagnosis ends 0 with a verdict
    assert result.code == 0, result.out + result.err
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.e2e
def test_diagnose_runs_a_script_that_imports_pandas(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    diagnosis = diagnosed(str(SCRIPTS / "pandas_frame.py"), tmp_path)
    experiments = {e["id"]: e for e in diagnosis["experiments"]}
    assert experiments["full_control"]["verdict"] == "reproducible"
    assert [c["id"] for c in diagnosis["causes"]] == ["sampler_seed"]


@pytest.mark.e2e
@pytest.mark.slow  # scikit-learn in every worker
def test_diagnose_runs_a_script_tuning_a_random_forest(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    diagnosis = diagnosed(str(SCRIPTS / "sklearn_forest.py"), tmp_path)
    experiments = {e["id"]: e for e in diagnosis["experiments"]}
    assert experiments["full_control"]["verdict"] == "reproducible"
    # the unseeded forest draws from NumPy's global stream; the sampler has no seed
    assert {"sampler_seed", "global_rng"} <= {c["id"] for c in diagnosis["causes"]}


# --- a global stream drawn from, then put back (issue item 4.3) ------------------------------


def _wrap_restore(
    audit: Any, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, stream: str
) -> None:
    """``owner.name`` wrapped as diagnose's workers wrap it (put back when the test ends)."""
    from repro_check.execution import audit as entropy

    monkeypatch.setattr(owner, name, getattr(owner, name))
    entropy._wrap_restore(audit, owner, name, stream)


def test_a_stream_drawn_from_and_put_back_counts_as_consumed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    np = pytest.importorskip("numpy")
    import random

    from repro_check.execution import audit as entropy

    audit = entropy.Audit()
    _wrap_restore(audit, monkeypatch, np.random, "set_state", "numpy")
    _wrap_restore(audit, monkeypatch, random, "setstate", "random")
    before = audit.streams()
    state = np.random.get_state()
    np.random.rand()
    np.random.set_state(state)
    kept = random.getstate()
    random.random()
    random.setstate(kept)
    assert entropy._digests() == before  # no trace in the states after the trial
    audit.trial_ended(0, before)
    assert audit.consumed == {"numpy": [0], "random": [0]}
    # put back with nothing drawn in between: not consumed
    before = audit.streams()
    np.random.set_state(np.random.get_state())
    random.setstate(random.getstate())
    audit.trial_ended(1, before)
    assert audit.consumed == {"numpy": [0], "random": [0]}
    # put back, drawn from, put back again: the draw after the first restore is seen
    before = audit.streams()
    state = np.random.get_state()
    np.random.set_state(state)
    np.random.rand()
    np.random.set_state(state)
    audit.trial_ended(2, before)
    assert audit.consumed["numpy"] == [0, 2]
    # a restore between trials (a control, a sampler) is no trial's draw
    np.random.rand()
    np.random.set_state(state)
    before = audit.streams()
    audit.trial_ended(3, before)
    assert audit.consumed["numpy"] == [0, 2]


@pytest.mark.slow  # imports torch
def test_torch_fork_rng_counts_as_consumed(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from repro_check.execution import audit as entropy

    audit = entropy.Audit()
    _wrap_restore(audit, monkeypatch, torch, "set_rng_state", "torch")
    before = audit.streams()
    with torch.random.fork_rng(devices=[]):
        torch.rand(1)
    audit.trial_ended(0, before)
    assert audit.consumed.get("torch") == [0]


@pytest.mark.e2e
def test_diagnose_seeds_a_global_stream_the_objective_restores(tmp_path: Path) -> None:
    """``st = np.random.get_state(); x = np.random.rand(); np.random.set_state(st)``: the
    state after each trial is the state before it, so the audit saw no consumption, global
    RNG seeding went untested, and the one fix (the sampler's seed) left the study not
    reproducible."""
    diagnosis = diagnosed(
        f"{FIXTURES / 'restored_global_rng.py'}:objective", tmp_path, "--trials", "4"
    )
    causes = {c["id"]: c for c in diagnosis["causes"]}
    assert "global_rng" in causes, diagnosis["causes"]
    assert "np.random.seed(" in causes["global_rng"]["fix"]
    verdicts = {e["id"]: e["verdict"] for e in diagnosis["experiments"]}
    assert verdicts["no_global_rng"] == "not reproducible"
    assert not any("never consumed the global" in w for w in diagnosis["warnings"])
