"""The docs cannot rot: the README stays short and links into the docs, every link it has
resolves, the generated reference text kept in the pages is what the code says now, and the
pages cover every command, exit code, schema definition, cause and control (what
``mkdocs build --strict`` checks through the hook, here in the fast tier, without a build)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

sys.path.insert(0, str(ROOT / "scripts"))
try:
    import docs_hooks
finally:
    sys.path.remove(str(ROOT / "scripts"))


def _slug(heading: str) -> str:
    """The anchor MkDocs (and GitHub) give a heading: lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_the_readme_is_short() -> None:
    assert README.stat().st_size <= 12 * 1024, "README over 12 KB: move the detail into docs/"


def test_every_relative_link_of_the_readme_resolves() -> None:
    for link in _links(README):
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = ROOT / target if target else README
        assert path.exists(), f"README links {link}: no such file"
        if anchor:
            assert anchor in _anchors(path), f"README links {link}: no such heading"


@pytest.mark.parametrize(
    "page",
    [
        "docs/how-to/check-a-script.md",  # how do I check my script?
        "docs/reference/exit-codes.md",  # what do the exit codes mean?
        "docs/how-to/ci.md#github-actions",  # how do I gate CI?
        "docs/cookbook/torch-cpu.md",  # how do I make torch training deterministic?
    ],
)
def test_a_newcomers_questions_are_one_link_from_the_readme(page: str) -> None:
    assert f"]({page})" in README.read_text(encoding="utf-8")


def test_every_docs_page_expands_and_covers_its_vocabulary() -> None:
    pages = sorted(DOCS.rglob("*.md"))
    assert len(pages) > 20
    for page in pages:
        text = page.read_text(encoding="utf-8")
        path = page.relative_to(DOCS).as_posix()
        assert docs_hooks.missing(path, text) == [], path
        docs_hooks.expand(text)  # raises on an unknown kind


def test_the_generated_text_kept_in_the_pages_is_current() -> None:
    stale = [p.relative_to(ROOT).as_posix() for p in docs_hooks.stale_pages(DOCS)]
    assert stale == [], f"run `python scripts/docs_hooks.py` to refresh {stale}"


def test_the_exit_code_page_lists_every_code_of_errors_py() -> None:
    from repro_check import errors

    text = docs_hooks.expand((DOCS / "reference" / "exit-codes.md").read_text(encoding="utf-8"))
    for name, code in vars(errors).items():
        if name.startswith("EXIT_"):
            assert f"| {code} | `{name}` |" in text


def test_the_json_reference_lists_every_field_of_the_schema() -> None:
    text = docs_hooks.expand((DOCS / "reference" / "json-report.md").read_text(encoding="utf-8"))
    for name, definition in docs_hooks.schema()["definitions"].items():
        section = text.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        for field in definition.get("properties", {}):
            assert f"| `{field}` |" in section, (name, field)


def test_the_config_reference_lists_every_key() -> None:
    from repro_check.plan import config

    text = docs_hooks.expand((DOCS / "reference" / "config.md").read_text(encoding="utf-8"))
    for key in [*config.KEYS, *config.ALIASES]:
        assert f"| `{key}` |" in text, key


def test_a_cause_or_control_left_out_of_its_page_is_named() -> None:
    assert docs_hooks.missing("explanation/diagnose.md", "") != []
    assert "control threads" in docs_hooks.missing("explanation/controls.md", "")
    assert "command run" in docs_hooks.missing("reference/cli.md", "")
    with pytest.raises(ValueError, match="unknown marker"):
        docs_hooks.expand("<!-- generated: nothing -->\n<!-- end generated -->")


def test_included_files_link_into_the_docs_from_the_docs() -> None:
    """CONTRIBUTING.md links docs/... (right on GitHub); included in docs/ those links lose
    the prefix, so they resolve in the site too."""
    text = docs_hooks.expand("<!-- generated: include CONTRIBUTING.md -->\n<!-- end generated -->")
    assert "](explanation/architecture.md)" in text
    assert "](docs/" not in text
