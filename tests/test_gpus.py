"""GPU placement (issue 13, item 1) on a machine without a GPU: the device layer is faked with
``REPRO_CHECK_FAKE_GPUS`` (the test suite's hook; it makes ``--device auto`` resolve to CUDA and
replaces nvidia-smi), so these tests check what each worker got (``CUDA_VISIBLE_DEVICES``, the
GPU it records), that a GPU runs one replicate at a time, and the report's grouping by model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, fixture, inprocess_cli
from factories import run, trial

from repro_check.errors import DeviceError
from repro_check.execution import environment, gpus
from repro_check.execution.replicates import default_workers
from repro_check.plan.gpu_request import parse_request
from repro_check.plan.settings import CheckPlan, Tolerance
from repro_check.results.fingerprint import fingerprint
from repro_check.results.records import RunRecord
from repro_check.results.report import RunReport
from repro_check.results.report_notes import environment_notes, gpu_notes

H100 = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-11111111-aaaa",
    "driver": "550.54.15",
    "compute_capability": "9.0",
}
H200 = {
    "index": 1,
    "name": "NVIDIA H200",
    "uuid": "GPU-22222222-bbbb",
    "driver": "550.54.15",
    "compute_capability": "9.0",
}


def _fake(*items: dict[str, Any]) -> dict[str, str]:
    return {gpus.FAKE_ENV: json.dumps(list(items))}


def _gpu(index: int, name: str = "NVIDIA H100 80GB HBM3") -> dict[str, Any]:
    return {**H100, "index": index, "name": name, "uuid": f"GPU-{index:08d}-{name[-4:]}"}


# -- discovery and selection


SMI = """\
0, NVIDIA H100 80GB HBM3, GPU-11111111-aaaa, 550.54.15, 9.0
1, NVIDIA H200, GPU-22222222-bbbb, 550.54.15, 9.0
"""


def test_nvidia_smi_rows_parse_into_gpus() -> None:
    found = gpus.parse_smi(SMI + "\nnot a row\n")
    assert [g.to_dict() for g in found] == [H100, H200]
    assert found[1].pin == "GPU-22222222-bbbb"  # workers are pinned by UUID, not by number


def test_the_parents_cuda_visible_devices_limits_what_is_placed() -> None:
    found = gpus.parse_smi(SMI)
    assert gpus.visible(found, None) == found
    assert gpus.visible(found, "1") == [found[1]]
    assert gpus.visible(found, "GPU-2222,0") == [found[1], found[0]]  # UUID prefix, CUDA's order
    assert gpus.visible(found, "") == []
    assert gpus.visible(found, "0,7,1") == [found[0]]  # CUDA stops at the first bad entry
    mig = gpus.visible(found, "MIG-abc/1/2")  # a MIG instance is kept as it is named
    assert [g.pin for g in mig] == ["MIG-abc/1/2"]


def test_select_places_every_visible_gpu_by_default_and_the_named_ones_on_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(gpus.FAKE_ENV, json.dumps([H100, H200, _gpu(3)]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [g.index for g in gpus.select(None, "cuda")] == [0, 1, 3]
    assert [g.index for g in gpus.select("all", "cuda")] == [0, 1, 3]
    assert [g.index for g in gpus.select("3,0", "cuda")] == [3, 0]
    assert [g.index for g in gpus.select("GPU-2222", "cuda")] == [1]
    with pytest.raises(DeviceError, match="no GPU 2 here"):
        gpus.select("0,2", "cuda")
    assert gpus.select(None, "cpu") == []  # nothing asked, nothing placed
    with pytest.raises(DeviceError, match="CUDA is not available"):
        gpus.select("0", "cpu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # the parent was given one GPU
    assert [g.index for g in gpus.select(None, "cuda")] == [1]
    with pytest.raises(DeviceError, match=r"visible: 1\)"):
        gpus.select("0", "cuda")


def test_discovery_asks_nvidia_smi_and_torch_only_when_the_mask_names_none_of_its_gpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probed: list[int] = []
    torch_sees = [gpus.Gpu(0, "NVIDIA H200", "GPU-22222222-bbbb")]
    monkeypatch.delenv(gpus.FAKE_ENV, raising=False)
    monkeypatch.setattr(gpus, "_nvidia_smi", lambda: gpus.parse_smi(SMI))

    def probe() -> list[gpus.Gpu]:
        probed.append(1)
        return torch_sees

    monkeypatch.setattr(gpus, "_torch_probe", probe)
    gpus._discover.cache_clear()
    try:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
        assert [g.name for g in gpus.discover()] == [H100["name"]]
        assert probed == []  # nvidia-smi answered: no torch import
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")  # renumbered by a cgroup
        assert gpus.discover() == torch_sees and probed == [1]
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
        assert gpus.discover() == []
    finally:
        gpus._discover.cache_clear()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all", ("all",)),
        ("0,1,3", ("0", "1", "3")),
        (" 01 , 2", ("1", "2")),
        ("GPU-ab", ("GPU-ab",)),
    ],
)
def test_gpu_requests_parse(value: str, expected: tuple[str, ...]) -> None:
    assert parse_request(value) == expected


@pytest.mark.parametrize("value", ["", "x", "0,0", "-1", "1.5", "²", "9" * 4000])
def test_bad_gpu_requests_are_refused(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_request(value)
    assert len(str(caught.value)) < 200


def test_workers_default_to_the_gpu_count_and_never_exceed_it() -> None:
    plan = CheckPlan(target="t:o", runs=8)
    assert default_workers(plan, "cuda", 8, 4) == 4
    assert default_workers(plan, "cuda", 2, 4) == 2  # capped at the jobs
    assert default_workers(dataclasses.replace(plan, workers=2), "cuda", 8, 4) == 2
    assert default_workers(dataclasses.replace(plan, workers=16), "cuda", 8, 4) == 4
    assert default_workers(plan, "cuda", 8, 0) == 1  # CUDA, but no GPU could be listed


# -- bad input: one line, exit 2, before anything runs


def test_explicit_gpus_without_cuda_is_exit_2_in_one_line() -> None:
    for flags, env in [
        (["--gpus", "0"], _fake()),  # a machine without CUDA (no fake GPU)
        (["--gpus", "all"], _fake()),
        (["--gpus", "0", "--device", "cpu"], _fake(H100)),  # GPUs hidden from workers
    ]:
        result = inprocess_cli("run", fixture("deterministic"), *flags, env=env)
        assert result.code == 2, result
        assert len(result.err.strip().splitlines()) == 1, result.err
        assert "--gpus" in result.err and "CUDA is not available" in result.err
        assert "Traceback" not in result.err
        # the conflict named: --device cpu, not the machine, when the GPUs are there
        assert ("--device cpu" in result.err) == ("--device" in flags), result.err


def test_a_gpu_that_is_not_there_or_a_bad_list_is_exit_2(tmp_path: Path) -> None:
    result = inprocess_cli("run", fixture("deterministic"), "--gpus", "0,5", env=_fake(H100))
    assert result.code == 2 and "no GPU 5 here (visible: 0)" in result.err, result
    result = inprocess_cli("run", fixture("deterministic"), "--gpus", "zero", env=_fake(H100))
    assert result.code == 2 and "--gpus must be 'all' or GPU indices" in result.err, result
    config = tmp_path / "c.toml"
    config.write_text("gpus = true\n")
    result = inprocess_cli(
        "run", fixture("deterministic"), "--config", str(config), env=_fake(H100)
    )
    assert result.code == 2 and "gpus must be 'all'" in result.err, result
    assert len(result.err.strip().splitlines()) == 1


# -- placement, end to end (real workers, fake GPUs)


@pytest.mark.e2e
def test_each_worker_is_pinned_to_one_gpu_and_a_gpu_runs_one_replicate_at_a_time(
    tmp_path: Path,
) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    env = {
        **_fake(H100, _gpu(1)),
        "REPRO_CHECK_TEST_GPU_LOCKS": str(locks),
        "REPRO_CHECK_TEST_TRIALS": "3",
    }
    # --workers 4 on 2 GPUs: still 2 at a time (a second worker on a GPU would find its lock)
    result = cli(
        "run",
        fixture("gpu_model"),
        "--runs",
        "4",
        "--trials",
        "3",
        "--workers",
        "4",
        env=env,
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    runs = result.report["runs"]
    assert [r["status"] for r in runs] == ["ok"] * 4
    pins = [r["gpu"]["uuid"] for r in runs]
    assert sorted(pins) == sorted([H100["uuid"], _gpu(1)["uuid"]] * 2)
    assert runs[0]["gpu"] == H100  # name, UUID, driver, capability: per run, in the report
    # the report's environment (the first run's) shows the variable the worker really had
    assert result.report["environment"]["env"]["CUDA_VISIBLE_DEVICES"] == pins[0]
    assert result.report["settings"]["device"] == "cuda"
    assert not list(locks.iterdir())  # every run released its GPU


@pytest.mark.e2e
def test_the_scheduler_never_runs_two_workers_on_one_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More worker slots than GPUs (as a library caller may ask): a job waits for a free GPU,
    and each worker's ``CUDA_VISIBLE_DEVICES`` is the UUID of the GPU it holds."""
    from repro_check.execution.jobs import RunOptions
    from repro_check.execution.replicates import replicate_jobs
    from repro_check.execution.runner import run_jobs

    locks = tmp_path / "locks"
    locks.mkdir()
    monkeypatch.setenv(gpus.FAKE_ENV, "[]")  # the worker trusts the parent's CUDA
    monkeypatch.setenv("REPRO_CHECK_TEST_GPU_LOCKS", str(locks))
    monkeypatch.setenv("REPRO_CHECK_TEST_TRIALS", "2")
    monkeypatch.setenv("REPRO_CHECK_TEST_SLEEP", "0.2")  # runs that start together overlap
    plan = CheckPlan(target=fixture("gpu_model"), runs=4)
    plan = dataclasses.replace(plan, study=dataclasses.replace(plan.study, trials=2))
    placed = [gpus.Gpu.from_dict(H100), gpus.Gpu.from_dict(H200)]
    options = RunOptions(workers=4, threads=1, device="cuda", gpus=placed)
    results = run_jobs(plan.target, replicate_jobs(plan), options)
    runs = [r for result in results for r in result.runs]
    assert [r.status for r in runs] == ["ok"] * 4, [r.error for r in runs]
    pins = [str(r.environment["env"]["CUDA_VISIBLE_DEVICES"]) for r in runs]
    assert sorted(pins) == sorted([str(H100["uuid"]), str(H200["uuid"])] * 2)
    assert [r.environment["gpu"]["uuid"] for r in runs] == pins


@pytest.mark.e2e
def test_one_worker_with_two_gpus_prewarms_on_the_free_one_only(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    env = {
        **_fake(H100, _gpu(1)),
        "REPRO_CHECK_TEST_GPU_LOCKS": str(locks),
        "REPRO_CHECK_TEST_TRIALS": "2",
    }
    result = cli(
        "run",
        fixture("gpu_model"),
        "--runs",
        "3",
        "--trials",
        "2",
        "--workers",
        "1",
        env=env,
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    assert all(r["status"] == "ok" and r["gpu"] for r in result.report["runs"])


@pytest.mark.e2e
def test_device_cpu_places_nothing_even_with_gpus(tmp_path: Path) -> None:
    result = cli(
        "run",
        fixture("deterministic"),
        "--runs",
        "2",
        "--trials",
        "2",
        "--device",
        "cpu",
        env={**_fake(H100, H200), gpus.ASSIGNED_ENV: json.dumps(H100)},  # inherited: ignored
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.err
    assert all("gpu" not in r for r in result.report["runs"])
    assert result.report["environment"]["env"]["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.e2e
def test_runs_are_grouped_by_gpu_model_and_the_report_says_where_models_part(
    tmp_path: Path,
) -> None:
    out = tmp_path / "r.json"
    result = cli(
        "run",
        fixture("gpu_model"),
        "--runs",
        "4",
        "--trials",
        "5",
        "-v",
        env=_fake(H100, H200),
        json_path=out,
    )
    assert result.code == 1, result.out + result.err
    notes = result.report["notes"]
    by_model = {r["index"]: r["gpu"]["name"] for r in result.report["runs"]}
    h100 = [i for i, name in by_model.items() if name == H100["name"]]
    h200 = [i for i, name in by_model.items() if name == H200["name"]]
    assert len(h100) == 2 and len(h200) == 2
    assert (
        f"runs used 2 GPU models: {H100['name']}: runs {h100[0]}, {h100[1]}; "
        f"{H200['name']}: runs {h200[0]}, {h200[1]}" in notes
    ), notes
    assert (
        f"runs on {H100['name']} and {H200['name']} part at trial 3 (values); "
        "runs on the same model agree" in notes
    ), notes
    assert f"gpu {H200['name']} ({H200['uuid']}), driver 550.54.15, compute capability 9.0" in (
        result.out
    )
    # the saved report keeps each run's GPU: `report` groups the runs the same way
    again = cli("report", str(out))
    assert again.code == 1
    assert "part at trial 3 (values); runs on the same model agree" in " ".join(again.out.split())


# -- the worker's record and the grouping, without processes


def test_the_worker_records_the_gpu_it_was_pinned_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gpus.ASSIGNED_ENV, json.dumps(H200))
    monkeypatch.delitem(__import__("sys").modules, "torch", raising=False)
    env = environment.collect(1)
    assert env["gpu"] == H200
    monkeypatch.delenv(gpus.ASSIGNED_ENV)
    assert "gpu" not in environment.collect(1)


def test_two_cards_of_one_model_are_one_environment() -> None:
    base = environment.collect(1)
    one = {**base, "gpu": H100}
    other = {**base, "gpu": {**H100, "index": 5, "uuid": "GPU-99"}}
    assert fingerprint(one) == fingerprint(other)
    assert fingerprint(one) != fingerprint({**base, "gpu": H200})


def _on(record: RunRecord, gpu: dict[str, Any]) -> RunRecord:
    return dataclasses.replace(record, environment={"cpu": "x", "python": "3", "gpu": gpu})


def _runs(values: list[list[float]], models: list[dict[str, Any]]) -> list[RunRecord]:
    return [
        _on(run(i, [trial(n, v) for n, v in enumerate(vals)]), models[i])
        for i, vals in enumerate(values)
    ]


def test_gpu_notes_say_where_models_part_and_whether_one_model_agrees() -> None:
    tol = Tolerance()
    same = _runs([[1, 2, 3], [1, 2, 4], [1, 2, 3], [1, 2, 4]], [H100, H200, H100, H200])
    assert gpu_notes(same, tol)[1] == (
        f"runs on {H100['name']} and {H200['name']} part at trial 2 (values); "
        "runs on the same model agree"
    )
    noisy = _runs([[1, 2, 3], [1, 2, 4], [1, 5, 3], [1, 2, 4]], [H100, H200, H100, H200])
    assert gpu_notes(noisy, tol)[1].endswith(
        "part at trial 2 (values); runs differ even on the same model"
    )
    agree = _runs([[1, 2], [1, 2]], [H100, H200])
    assert gpu_notes(agree, tol)[1] == f"runs on {H100['name']} and {H200['name']} agree"
    one_model = _runs([[1, 2], [1, 3]], [H100, {**H100, "uuid": "GPU-other"}])
    assert gpu_notes(one_model, tol) == []
    assert not any("GPU model" in n for n in environment_notes(one_model, tol))


def test_a_saved_report_keeps_each_runs_gpu() -> None:
    plan = CheckPlan(target="t:o", runs=2, gpus="0,1")
    plan = dataclasses.replace(plan, study=dataclasses.replace(plan.study, trials=2))
    runs = _runs([[1, 2], [1, 3]], [H100, H200])
    from repro_check.results.report import build
    from repro_check.results.validate import check_report_data

    data = build("run", plan, "cuda", runs).to_dict()
    assert [r["gpu"]["uuid"] for r in data["runs"]] == [H100["uuid"], H200["uuid"]]
    assert data["settings"]["gpus"] == "0,1"
    check_report_data(json.loads(json.dumps(data)), "r.json")
    again = RunReport.from_dict(data)
    assert [r.environment["gpu"]["name"] for r in again.runs] == [H100["name"], H200["name"]]
    assert again.plan.gpus == "0,1"
    assert any("part at trial 1" in note for note in again.notes)


def test_the_python_api_takes_gpus_and_refuses_them_without_cuda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import repro_check

    monkeypatch.setenv(gpus.FAKE_ENV, "[]")
    with pytest.raises(DeviceError, match="--gpus 0,1: CUDA is not available"):
        repro_check.check(fixture("deterministic"), runs=2, trials=1, gpus=[0, 1])


@pytest.mark.e2e
def test_a_shared_check_keeps_each_runs_gpu_in_the_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'checks.db'}"
    flags = ("--runs", "2", "--trials", "4", "--storage", url, "--name", "g")
    result = cli("run", fixture("gpu_model"), *flags, env=_fake(H100, H200))
    assert result.code == 1, result.out + result.err
    gathered = cli("report", "--storage", url, "--name", "g", json_path=tmp_path / "g.json")
    assert gathered.code == 1, gathered.out + gathered.err
    by_run = [r["gpu"]["name"] for r in gathered.report["runs"]]
    assert sorted(by_run) == [H100["name"], H200["name"]]
    models = sorted([H100["name"], H200["name"]], key=lambda m: m != by_run[0])
    assert (
        f"runs on {models[0]} and {models[1]} part at trial 3 (values)"
        in (gathered.report["notes"])
    )
