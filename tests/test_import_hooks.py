"""The import hooks that act when user code first imports a package (the torch controls, the
entropy audit's torch and joblib wrappers) survive a ``find_spec`` that imports nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import cli, fixture


@pytest.mark.e2e
def test_torch_controls_apply_after_a_find_spec_probe(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "run.json"
    result = cli(
        "run", fixture("torch_find_spec"), "--runs", "2", "--trials", "2", "--json", str(out)
    )
    assert result.code == 0, result.out + result.err
    trials = [t for run in json.loads(out.read_text())["runs"] for t in run["trials"]]
    assert len(trials) == 4
    assert all(t["user_attrs"] == {"deterministic": True, "threads": 1} for t in trials)


def test_the_hook_fires_once_on_the_real_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import importlib.util

    from repro_check.execution.rng_hooks import AfterImport

    (tmp_path / "hooked_pkg.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[ModuleType] = []
    hook = AfterImport("hooked_pkg", seen.append)
    sys.meta_path.insert(0, hook)
    try:
        assert importlib.util.find_spec("hooked_pkg") is not None
        assert seen == [] and hook in sys.meta_path
        module = importlib.import_module("hooked_pkg")
        assert seen == [module] and hook not in sys.meta_path
    finally:
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)
        sys.modules.pop("hooked_pkg", None)
