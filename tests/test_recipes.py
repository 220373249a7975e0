"""The determinism cookbook proves itself: every recipe pair in ``docs/recipes`` is run through
``repro-check run`` with the command its page in ``docs/cookbook`` prints, and the broken form
must be NOT REPRODUCIBLE (exit 1), the fixed form REPRODUCIBLE (exit 0). A page whose advice
stops working (a library changes its defaults, a fix stops fixing) fails here.

Pairs are found by listing ``docs/recipes`` (``<topic>_broken.py`` and ``<topic>_fixed.py``),
so a new pair is run without touching this file; its page is ``docs/cookbook/<topic with
hyphens>.md``. Each broken recipe fails every time, not by luck: its docstring gives the odds
of two runs agreeing by chance (at most about 1 in 10**8)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import cli

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "docs" / "recipes"
COOKBOOK = ROOT / "docs" / "cookbook"
TOPICS = sorted(path.name.removesuffix("_broken.py") for path in RECIPES.glob("*_broken.py"))

HEAVY = {"torch_cpu", "torch_cuda", "dataloader_workers"}
"""The pairs that import torch in every replicate (2-3 s of CPU each): marked slow."""
ON_GPU = {"torch_cuda"}
"""The pairs that need a CUDA GPU: marked cuda (skipped without one)."""
NEEDS = {"xgboost_lightgbm": ("xgboost", "lightgbm")}
"""Libraries a pair imports beyond the dev extra's sure ones: skipped where one is missing (no
wheel for the platform, or LightGBM without its OpenMP runtime)."""
RUNS = ("--runs", "2")
"""Two replicates, unless the page's command says otherwise: two fresh processes that differ
prove a broken recipe, two that agree bit for bit a fixed one (a third costs CPU, not proof)."""


def page_of(topic: str) -> Path:
    return COOKBOOK / f"{topic.replace('_', '-')}.md"


def page_args(topic: str, form: str) -> list[str]:
    """The arguments after the recipe's path in the page's ``repro-check run`` command (up to a
    ``#`` comment or the line's end). The test runs what the page tells the reader to run."""
    pattern = rf"repro-check run docs/recipes/{topic}_{form}\.py([^\n`#]*)"
    found = re.search(pattern, page_of(topic).read_text())
    assert found, f"{page_of(topic).name} shows no `repro-check run docs/recipes/{topic}_{form}.py`"
    return shlex.split(found.group(1))


def marks(topic: str) -> list[pytest.MarkDecorator]:
    chosen = [pytest.mark.e2e]
    if topic in HEAVY:
        chosen.append(pytest.mark.slow)
    if topic in ON_GPU:
        chosen.append(pytest.mark.cuda)
    return chosen


CASES = [
    pytest.param(topic, form, marks=marks(topic), id=f"{topic}-{form}")
    for topic in TOPICS
    for form in ("broken", "fixed")
]


def skip_without_libraries(topic: str) -> None:
    for name in NEEDS.get(topic, ()):
        try:
            __import__(name)
        except (ImportError, OSError) as exc:  # OSError: a native library missing
            pytest.skip(f"{topic} needs {name}: {exc}")


@pytest.mark.parametrize(("topic", "form"), CASES)
def test_recipe_verdict(
    topic: str, form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skip_without_libraries(topic)
    # As a reader's shell has it: no hash seed pinned (the ordering recipe is about that one).
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    args = page_args(topic, form)
    if "--runs" not in args:
        args = [*args, *RUNS]
    script = RECIPES / f"{topic}_{form}.py"
    result = cli("run", str(script), *args, cwd=tmp_path, timeout=300)
    output = result.out + result.err
    if form == "broken":
        assert result.code == 1, output
        assert "NOT REPRODUCIBLE" in result.out, output
    else:
        assert result.code == 0, output
        assert "REPRODUCIBLE:" in result.out and "NOT REPRODUCIBLE" not in result.out, output
    assert not list(tmp_path.iterdir()), "a recipe wrote into the folder it ran in"


def test_every_recipe_is_a_pair_with_a_page() -> None:
    assert TOPICS, "no recipes found"
    for topic in TOPICS:
        assert (RECIPES / f"{topic}_fixed.py").is_file(), f"{topic}_broken.py has no fixed form"
        assert page_of(topic).is_file(), f"{topic} has no page {page_of(topic).name}"
    for fixed in RECIPES.glob("*_fixed.py"):
        topic = fixed.name.removesuffix("_fixed.py")
        assert topic in TOPICS, f"{fixed.name} has no broken form"
    for path in RECIPES.iterdir():
        assert path.name.endswith(("_broken.py", "_fixed.py")) or path.name == "__pycache__", (
            f"{path.name} is neither a broken nor a fixed recipe"
        )


def test_every_recipe_a_page_names_exists() -> None:
    for page in sorted(COOKBOOK.glob("*.md")):
        for name in re.findall(r"recipes/([\w.-]+\.py)", page.read_text()):
            assert (RECIPES / name).is_file(), f"{page.name} names recipes/{name}: no such file"


def diff_blocks(page: Path) -> list[list[str]]:
    blocks = re.findall(r"```diff\n(.*?)```", page.read_text(), re.S)
    return [block.splitlines() for block in blocks]


def test_every_line_a_page_diff_shows_is_in_its_recipes() -> None:
    """A page's ``diff`` block is the pair's diff as the reader sees it: each ``-`` line is in
    the broken script, each ``+`` line in the fixed one, each context line in both, so an
    edit to a recipe that the page does not follow fails here."""
    checked = 0
    for topic in TOPICS:
        broken = set((RECIPES / f"{topic}_broken.py").read_text().splitlines())
        fixed = set((RECIPES / f"{topic}_fixed.py").read_text().splitlines())
        for block in diff_blocks(page_of(topic)):
            for line in block:
                if line.startswith("@@"):
                    continue
                sign, text = line[:1], line[1:]
                wanted = {"-": [broken], "+": [fixed]}.get(sign, [broken, fixed])
                where = {"-": "broken", "+": "fixed"}.get(sign, "both")
                assert all(text in lines for lines in wanted), (
                    f"{page_of(topic).name}: {line!r} is not in the {where} recipe"
                )
                checked += 1
    assert checked, "no page shows a diff"


def test_the_cookbook_index_lists_every_page() -> None:
    index = (COOKBOOK / "index.md").read_text()
    for page in sorted(COOKBOOK.glob("*.md")):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"index.md does not link {page.name}"
