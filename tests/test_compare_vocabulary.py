"""``compare`` says one thing one way (issue 21, item 6): each condition has one name in every
output (fixed seed, seed sweep, as written), the seed sweep is described and never judged,
every spread says how many runs it rests on and its mean's 95% interval, and every note says
which conditions it holds for."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import cli, inprocess_cli

from repro_check.render import sections
from repro_check.results.compare_report import LABELS
from repro_check.vocab import Condition

TRAIN = str(Path(__file__).parent.parent / "repro_check" / "examples" / "train.py")
"""The bundled script: its sampler has no seed unless ``--seed`` is passed to it."""
OLD_NAMES = ("fixed_seed", "seed_sweep", "uncontrolled", "controlled")


def test_every_condition_has_one_label() -> None:
    assert set(LABELS) == set(Condition)
    assert [LABELS[c] for c in Condition] == ["fixed seed", "seed sweep", "as written"]
    assert sections.TITLES == LABELS
    assert {sections.title(c, script) for c in Condition for script in (True, False)} == set(
        LABELS.values()
    )


@pytest.mark.e2e
def test_compare_names_conditions_alike_everywhere_and_never_judges_the_sweep(
    tmp_path: Path,
) -> None:
    md, xml = tmp_path / "c.md", tmp_path / "c.xml"
    argv = ("compare", TRAIN, "--trials", "3", "--runs", "2", "--markdown", str(md))
    result = cli(*argv, "--junit", str(xml), json_path=tmp_path / "c.json")
    assert result.code == 1, result.out + result.err  # unseeded: the gate parts
    out = result.out
    # console: the labels, the sweep not judged, n and the interval beside a spread
    header = next(line for line in out.splitlines() if "┃" in line and "fixed seed" in line)
    assert header.index("fixed seed") < header.index("seed sweep") < header.index("as written")
    assert "not judged (meant to vary)" in out
    assert "n=2, 95% CI of the mean" in out
    # notes say which conditions they hold for: the sampler the check seeded in the sweep
    # and left unseeded in the others no longer reads as a contradiction
    assert "• fixed seed, as written: " in out and "without seed: every run samples" in out
    assert "• seed sweep: " in out and "without seed: seeded with 0" in out
    assert "• every condition: --trials 3 capped study 'train'" in out
    markdown = md.read_text()
    for text in (out, markdown):
        assert not any(old in text for old in OLD_NAMES), text
    assert "| seed sweep | not judged (meant to vary) |" in markdown
    cases = ET.parse(xml).getroot().findall("testsuite/testcase")
    names = [case.get("name") for case in cases]
    assert names == [f"{TRAIN} [{label}]" for label in LABELS.values()]
    sweep = cases[1]
    assert sweep.find("failure") is None
    sweep_out = sweep.findtext("system-out") or ""
    assert "diagnose" not in sweep_out and "NOT REPRODUCIBLE" not in sweep_out
    report = result.report
    assert report is not None
    assert report["labels"] == {key: label for key, label in LABELS.items()}
    assert report["judged"] == ["fixed_seed", "uncontrolled"]
    assert list(report["conditions"]) == ["fixed_seed", "seed_sweep", "uncontrolled"]
    # read back, it is drawn the same way
    again = inprocess_cli("report", str(tmp_path / "c.json"))
    assert again.code == 1, again.err
    assert "not judged (meant to vary)" in again.out and "• seed sweep: " in again.out
