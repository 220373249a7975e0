"""Any sampler with a ``seed`` is seeded and named, and an integration that owns its sampler is
named by its own parameter (issue 22, item 2); sampler_seed's fix is the user's line rewritten,
and pastes (item 6).

In process: which library call built a sampler (``execution.sampler_owner``), the notes and the
cause's edit from records. Through the CLI: optuna-examples' simulated-annealing sampler (a
class of the script's own) and a stand-in for ``LightGBMTunerCV`` (installed code under a
``site-packages`` folder that builds its ``TPESampler`` in ``run()``)."""

from __future__ import annotations

import ast
import json
import runpy
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, diagnosed, pasted, report_studies, write_source

from repro_check.checks.causes.sampler import sampler_fix, sampler_location, sampler_sites
from repro_check.execution.sampler_owner import Owner, library_owner
from repro_check.execution.userframes import is_user_file
from repro_check.results.diagnosis import Edit
from repro_check.results.records import RunRecord, SamplerInfo, StudyRecord
from repro_check.results.script_notes import sampler_note, seed_keyword, unseeded

SCRIPTS = FIXTURES / "scripts"
CUSTOM = SCRIPTS / "custom_sampler.py"
OWNED = SCRIPTS / "owned_sampler.py"
CUSTOM_LINE = 55  # sampler = SimulatedAnnealingSampler()
OWNED_LINE = 19  # tuner = FakeTunerCV(objective, n_trials=8)


def test_the_fixtures_lines_are_the_ones_the_tests_name() -> None:
    assert CUSTOM.read_text().splitlines()[CUSTOM_LINE - 1].strip() == (
        "sampler = SimulatedAnnealingSampler()"
    )
    assert OWNED.read_text().splitlines()[OWNED_LINE - 1].strip() == (
        "tuner = FakeTunerCV(objective, n_trials=8)"
    )


def test_a_package_under_any_site_packages_folder_is_library_code(tmp_path: Path) -> None:
    lib = write_source(tmp_path / "env" / "site-packages" / "lib" / "__init__.py", "")
    user = write_source(tmp_path / "train.py", "")
    assert not is_user_file(str(lib))
    assert is_user_file(str(user))


# -- which library call built it (in process: a user file calling a library file) -----------

LIBRARY = '''
import sys
from repro_check.execution.sampler_owner import library_owner

FOUND = []


def _building():
    """Stands for the sampler's __init__: the hook asks from its caller's frame."""
    FOUND.append(library_owner(sys._getframe(1)))


class Tuner:
    def __init__(self, objective=None, seed=0, optuna_seed=None, build=False):
        self.seed = seed
        if build:
            _building()

    def run(self):
        _building()


def tune(objective=None, seed=None):
    _building()
'''


def _owner_of(tmp_path: Path, script: str) -> Owner | None:
    """What ``library_owner`` finds when ``script`` makes the library build a sampler."""
    write_source(tmp_path / "env" / "site-packages" / "fakelib" / "__init__.py", LIBRARY)
    path = write_source(tmp_path / "train.py", textwrap.dedent(script))
    sys.path.insert(0, str(tmp_path / "env" / "site-packages"))
    try:
        runpy.run_path(str(path), run_name="__main__")
        found: list[Owner | None] = sys.modules["fakelib"].FOUND
    finally:
        sys.path.remove(str(tmp_path / "env" / "site-packages"))
        sys.modules.pop("fakelib", None)
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        # the object built on an earlier line; its own seed=0 is LightGBM's, not the sampler's
        (
            """
            import fakelib

            def main():
                tuner = fakelib.Tuner(None)
                tuner.seed = 1
                tuner.run()

            main()
            """,
            ("Tuner", "optuna_seed", 5),
        ),
        # built and run in one statement
        ("import fakelib\nfakelib.Tuner().run()\n", ("Tuner", "optuna_seed", 2)),
        # imported under another name: the edit must name the call as the script writes it
        (
            "from fakelib import Tuner as T\n\nt = T(None)\nif True:\n    t.run()\n",
            ("T", "optuna_seed", 3),
        ),
        # the sampler built in the constructor: the constructor's own line
        ("import fakelib\nx = fakelib.Tuner(\n    build=True,\n)\n", ("Tuner", "optuna_seed", 2)),
        # a function with its own seed parameter, left None
        ("import fakelib\nfakelib.tune(None)\n", ("tune", "seed", 2)),
    ],
)
def test_the_library_call_that_built_a_sampler_is_named_at_the_scripts_line(
    tmp_path: Path, script: str, expected: tuple[str, str, int]
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        owner = _owner_of(tmp_path, script)
    via, param, line = expected
    assert owner == Owner(via, param, f"train.py:{line}")


def test_a_sampler_the_script_builds_itself_has_no_owner() -> None:
    assert library_owner(sys._getframe(0)) is None


# -- notes and fixes from records ------------------------------------------------------------


def _study(sampler: SamplerInfo, at: str | None = "train.py:3") -> StudyRecord:
    return StudyRecord("s", ("minimize",), sampler, at=at)


def _run(*studies: StudyRecord) -> RunRecord:
    return RunRecord(index=0, seed=0, status="ok", trials=(), studies=studies)


def test_a_custom_sampler_with_a_seed_is_named_like_optunas() -> None:
    sampler = SamplerInfo("SimulatedAnnealingSampler", None, "t.py:55", False, "seed")
    assert unseeded(sampler) and seed_keyword(sampler) == "seed"
    assert sampler_note(_study(sampler), 0) == (
        "t.py:55 builds SimulatedAnnealingSampler() without seed: every run samples "
        "differently; pass seed=0"
    )
    seeded = SamplerInfo("SimulatedAnnealingSampler", None, "t.py:55", True, "seed")
    assert sampler_note(_study(seeded), 0) == (
        "t.py:55 builds SimulatedAnnealingSampler() without seed: seeded with 0"
    )
    # a class of the script's own recorded without seed_param takes none: never "pass seed=0"
    assert not unseeded(SamplerInfo("MySampler", None, "t.py:5"))
    assert sampler_note(_study(SamplerInfo("MySampler", None, "t.py:5")), 0) is None
    # Optuna's rule by class name holds for records without the field (reports saved before)
    assert unseeded(SamplerInfo("BruteForceSampler", None, "t.py:5"))
    assert not unseeded(SamplerInfo("GridSampler", None, "t.py:5"))


def test_an_integrations_sampler_is_named_by_its_own_parameter() -> None:
    sampler = SamplerInfo("TPESampler", None, "t.py:19", True, "optuna_seed", "FakeTunerCV")
    assert sampler_note(_study(sampler), 0) == (
        "t.py:19 builds FakeTunerCV() without optuna_seed (its TPESampler): seeded with 0"
    )
    unseeded_one = SamplerInfo("TPESampler", None, "t.py:19", False, "optuna_seed", "FakeTunerCV")
    assert sampler_note(_study(unseeded_one), 0) == (
        "t.py:19 builds FakeTunerCV() without optuna_seed (its TPESampler): every run samples "
        "differently; pass optuna_seed=0"
    )
    no_param = SamplerInfo("TPESampler", None, "t.py:19", False, None, "Tuner")
    assert sampler_note(_study(no_param), 0) == (
        "t.py:19 Tuner() builds TPESampler() without seed: every run samples differently; "
        "Tuner() takes no seed parameter"
    )


def test_sampler_info_round_trips_its_new_fields() -> None:
    import msgspec

    from repro_check.results import saved

    info = SamplerInfo("TPESampler", None, "t.py:19", True, "optuna_seed", "FakeTunerCV")
    data = info.to_dict()
    assert SamplerInfo.from_dict(data) == info
    assert SamplerInfo.from_saved(msgspec.convert(data, saved.Sampler)) == info
    plain = SamplerInfo("TPESampler", 3, "t.py:2")
    assert set(plain.to_dict()) == {"class", "seed", "at", "seeded_by_check"}  # as before


def _site_fix(
    tmp_path: Path, source: str, sampler: SamplerInfo, study_line: int = 3
) -> tuple[str, Edit | None]:
    path = write_source(tmp_path / "train.py", textwrap.dedent(source))
    study = _study(sampler, at=f"{path}:{study_line}")
    runs = [_run(study)]
    fix = sampler_fix(runs, 0)
    assert fix is not None
    ast.parse(fix)  # valid Python as printed, comments included
    sites = sampler_sites(runs, 0)
    return fix, sites[0].edit


def test_the_fix_adds_seed_where_a_custom_sampler_is_built(tmp_path: Path) -> None:
    source = "import optuna\nfrom mine import Annealing\nsampler = Annealing(temperature=50)\n"
    fix, edit = _site_fix(
        tmp_path, source, SamplerInfo("Annealing", None, f"{tmp_path}/train.py:3", False, "seed")
    )
    assert edit is not None and edit.code == "sampler = Annealing(temperature=50, seed=0)"
    assert fix.endswith("Annealing() has no seed; the line becomes:\n" + edit.code)


@pytest.mark.parametrize(
    ("imports", "expected"),
    [
        ("import optuna", "optuna.samplers.TPESampler(seed=0)"),
        ("import optuna as opt", "opt.samplers.TPESampler(seed=0)"),
        ("from optuna import samplers, create_study", "samplers.TPESampler(seed=0)"),
        ("from optuna.samplers import TPESampler as T\nimport optuna", "optuna."),
        ("from optuna.samplers import TPESampler as T\nfrom optuna import create_study", "T("),
    ],
)
def test_a_default_samplers_fix_names_optuna_as_the_script_imported_it(
    tmp_path: Path, imports: str, expected: str
) -> None:
    source = f"{imports}\nstudy = create_study(direction='maximize')\n"
    line = source.count("\n")
    _, edit = _site_fix(tmp_path, source, SamplerInfo("TPESampler", None, None), line)
    assert edit is not None and expected in edit.code
    assert edit.code.startswith("study = create_study(direction='maximize', sampler=")
    ast.parse(edit.code)


def test_without_a_name_for_optuna_the_fix_is_a_comment(tmp_path: Path) -> None:
    source = "from optuna import create_study\n\nstudy = create_study()\n"
    fix, edit = _site_fix(tmp_path, source, SamplerInfo("TPESampler", None, None))
    assert edit is None
    assert fix.startswith("# ") and "sampler=optuna.samplers.TPESampler(seed=0)" in fix


def test_a_second_unseeded_sampler_is_a_comment_after_the_first_fix(tmp_path: Path) -> None:
    path = write_source(
        tmp_path / "train.py",
        "import optuna\na = optuna.samplers.TPESampler()\nb = optuna.samplers.RandomSampler()\n",
    )
    runs = [
        _run(
            _study(SamplerInfo("TPESampler", None, f"{path}:2")),
            _study(SamplerInfo("RandomSampler", None, f"{path}:3")),
        )
    ]
    fix = sampler_fix(runs, 0)
    assert fix is not None
    assert fix.splitlines()[1:] == [
        "a = optuna.samplers.TPESampler(seed=0)",
        f"# also {path}:3: RandomSampler() has no seed: pass seed=0",
    ]
    location = sampler_location(runs)
    assert location is not None and location.line == 2


# -- through the CLI ---------------------------------------------------------------------------


def _sampler_of(report: dict[str, Any]) -> dict[str, Any]:
    sampler: dict[str, Any] = report_studies(report)[0]["sampler"]
    return sampler


@pytest.mark.e2e
def test_controls_all_seeds_a_custom_sampler_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    result = cli(
        "run", str(CUSTOM), "--runs", "2", "--controls", "all", "--json", str(out), cwd=tmp_path
    )
    assert result.code == 0, result.out + result.err
    sampler = _sampler_of(json.loads(out.read_text()))
    assert sampler["class"] == "SimulatedAnnealingSampler"
    assert sampler["seeded_by_check"] is True and sampler["seed_param"] == "seed"
    assert sampler["at"].endswith(f"custom_sampler.py:{CUSTOM_LINE}")
    note = f"custom_sampler.py:{CUSTOM_LINE} builds SimulatedAnnealingSampler() without seed"
    assert f"{note}: seeded with 0" in result.out
    # as written it anneals differently in every run, and the report says where to seed it
    written = cli("run", str(CUSTOM), "--runs", "2", cwd=tmp_path)
    assert written.code == 1, written.out + written.err
    assert f"{note}: every run samples differently; pass seed=0" in written.out


UNSEEDABLE = """\
import optuna


class Fixed(optuna.samplers.BaseSampler):
    def __init__(self, value=1.0):
        self.value = value

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, distribution):
        return self.value


class MyTPE(optuna.samplers.TPESampler):
    pass


study = optuna.create_study(study_name="fixed", sampler=Fixed())
study.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=2)
tpe = optuna.create_study(study_name="tpe", sampler=MyTPE(n_startup_trials=2))
tpe.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=3)
"""


@pytest.mark.e2e
def test_a_sampler_without_a_seed_parameter_is_never_called_seeded(tmp_path: Path) -> None:
    script = write_source(tmp_path / "fixed.py", UNSEEDABLE)
    out = tmp_path / "run.json"
    result = cli(
        "run", str(script), "--runs", "2", "--controls", "all", "--json", str(out), cwd=tmp_path
    )
    assert result.code == 0, result.out + result.err
    fixed, tpe = report_studies(json.loads(out.read_text()))
    assert fixed["sampler"]["class"] == "Fixed" and fixed["sampler"]["seeded_by_check"] is False
    assert (
        "fixed.py:22: Fixed() takes no seed parameter: --controls sampler_seed cannot seed it"
        in (" ".join(result.out.split()))
    )
    # a subclass of Optuna's TPESampler takes its seed through the inherited __init__
    assert tpe["sampler"]["class"] == "MyTPE" and tpe["sampler"]["seeded_by_check"] is True
    assert "fixed.py:24 builds MyTPE() without seed: seeded with 0" in result.out


def _diagnose_and_paste(tmp_path: Path, fixture: Path, extra: tuple[str, ...] = ()) -> Any:
    """diagnose a copy of ``fixture`` (and the folders it needs), check its one cause's
    printed fix, apply its edit and run the copy as written: it must reproduce."""
    copy = tmp_path / fixture.name
    shutil.copy(fixture, copy)
    for folder in extra:
        shutil.copytree(fixture.parent / folder, tmp_path / folder)
    causes = diagnosed(str(copy), tmp_path)
    assert [c["id"] for c in causes] == ["sampler_seed"], causes
    cause = causes[0]
    assert cause["edit"] is not None
    assert not any("..." in ln for ln in cause["fix"].splitlines())  # comments too
    pasted(copy, causes, str(copy))
    return cause


@pytest.mark.e2e
def test_diagnose_seeds_a_custom_sampler_where_the_script_builds_it(tmp_path: Path) -> None:
    """Not objective noise, and not TPESampler(seed=0) in place of the user's algorithm."""
    cause = _diagnose_and_paste(tmp_path, CUSTOM)
    assert cause["location"]["line"] == CUSTOM_LINE
    assert cause["location"]["source"] == "sampler = SimulatedAnnealingSampler()"
    assert cause["edit"]["code"] == "sampler = SimulatedAnnealingSampler(seed=0)"
    assert "TPESampler" not in cause["fix"]


@pytest.mark.e2e
def test_diagnose_names_an_integrations_own_seed_where_the_script_builds_it(
    tmp_path: Path,
) -> None:
    cause = _diagnose_and_paste(tmp_path, OWNED, extra=("site-packages",))
    assert cause["location"]["line"] == OWNED_LINE  # not tuner.run()'s line
    assert cause["edit"]["code"] == "tuner = FakeTunerCV(objective, n_trials=8, optuna_seed=0)"
    assert "FakeTunerCV() has no optuna_seed" in cause["fix"]


def test_a_seed_expression_that_was_none_is_named_not_overwritten(tmp_path: Path) -> None:
    """``TPESampler(seed=args.seed)`` without ``--seed``: no keyword to add; the fix says
    which expression to give a value (the bundled example's case)."""
    source = (
        "import optuna\nstudy = optuna.create_study(\n"
        "    sampler=optuna.samplers.TPESampler(seed=args.seed)\n)\n"
    )
    fix, edit = _site_fix(
        tmp_path, source, SamplerInfo("TPESampler", None, f"{tmp_path}/train.py:3")
    )
    assert edit is None
    assert fix == (
        f"# {tmp_path}/train.py:3: TPESampler(seed=args.seed) got seed=None: give args.seed a "
        "value (such as 0)"
    )


def test_a_library_function_that_built_the_sampler_is_called_not_built() -> None:
    sampler = SamplerInfo("TPESampler", None, "t.py:5", True, "seed", "tune")
    assert sampler_note(_study(sampler), 0) == (
        "t.py:5 calls tune() without seed (its TPESampler): seeded with 0"
    )


@pytest.mark.e2e
def test_a_sampler_built_inside_the_scripts_own_sampler_is_seeded_too(tmp_path: Path) -> None:
    """The inner RandomSampler() of a delegating sampler class: once left unseeded while
    the outer class was noted "seeded with 0", so the check failed under the control."""
    nested = FIXTURES / "scripts" / "nested_sampler.py"
    result = cli("run", str(nested), "--runs", "2", "--controls", "sampler_seed", cwd=tmp_path)
    assert result.code == 0, result.out + result.err
    assert "builds Delegating() without seed: seeded with 0" in result.out


DATACLASS_SAMPLER = """\
from dataclasses import dataclass

import numpy as np
import optuna


@dataclass
class Noisy(optuna.samplers.BaseSampler):
    seed: int | None = None

    def __post_init__(self):
        self._rng = np.random.RandomState(self.seed)

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, dist):
        return float(self._rng.uniform(dist.low, dist.high))


class Abstract(optuna.samplers.BaseSampler):
    pass


try:
    Abstract()
except TypeError:
    pass
else:
    raise SystemExit("an abstract sampler was built")
study = optuna.create_study(sampler=Noisy())
study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
"""


@pytest.mark.e2e
def test_a_dataclass_sampler_is_seeded_though_its_init_comes_late(tmp_path: Path) -> None:
    """``@dataclass`` adds ``__init__`` after ``__init_subclass__`` ran: the class is wrapped
    when first built instead (it was left unseeded, with no note)."""
    script = write_source(tmp_path / "noisy.py", DATACLASS_SAMPLER)
    result = cli("run", str(script), "--runs", "2", "--controls", "sampler_seed", cwd=tmp_path)
    assert result.code == 0, result.out + result.err
    assert "builds Noisy() without seed: seeded with 0" in result.out
    assert cli("run", str(script), "--runs", "2", cwd=tmp_path).code == 1  # as written
