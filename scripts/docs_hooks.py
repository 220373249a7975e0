"""MkDocs hooks (``hooks:`` in mkdocs.yml): the docs' reference is generated from the code.

A page holds a block such as::

    <!-- generated: command run -->
    (the generated text)
    <!-- end generated -->

and the build fills it with what the code says today, so the reference cannot drift from the
CLI, the exit codes, the published JSON Schema or the config keys. The text is also kept in the
page (so it reads whole on GitHub): ``python scripts/docs_hooks.py`` rewrites the blocks after
a change, and tests/test_docs.py fails while a page holds stale text. The kinds:

- ``command NAME``: a command's usage, help, arguments and flags (``scripts/flag_table.py``);
- ``exit-codes``: the ``EXIT_*`` codes of ``repro_check/errors.py``;
- ``schema DEFINITION``: one definition of ``report.schema.json``, field by field;
- ``config-keys``: the keys ``repro_check/plan/config.py`` accepts, with their flags;
- ``cause ID``: the experiment that finds a cause, from ``repro_check/checks/causes/``;
- ``include FILE``: a file of the repository root (CHANGELOG.md, CONTRIBUTING.md), its links
  to ``docs/...`` made relative to the docs (filled at build time only).

A block of an unknown kind, or a command, schema definition, cause or control left out of the
page that lists them, stops the build (an exception, strict or not).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import flag_table  # noqa: E402  (a sibling script, found through the line above)

sys.path.remove(str(ROOT / "scripts"))

MARKER = re.compile(
    r"^<!-- generated: ([\w-]+)(?: ([^\s>]+))? -->\n(.*?)^<!-- end generated -->$",
    flags=re.MULTILINE | re.DOTALL,
)
"""A generated block: its opening and closing markers are lines of their own (a marker quoted
in a code span is text), and what lies between them is replaced."""

BUILD_ONLY = {"include"}
"""Kinds whose text is not kept in the page between its markers (the included file is in the
repository already); every other kind's is, so the page reads whole on GitHub too."""

EXIT_MEANINGS = {
    "EXIT_REPRODUCIBLE": (
        "reproducible (`run`, `compare`'s fixed seed condition) / diagnosis completed "
        "(`diagnose`, whatever it found) / same results (`diff`) / this process did its share "
        "of a shared check that still awaits replicates"
    ),
    "EXIT_NOT_REPRODUCIBLE": (
        "not reproducible, or differs from `--baseline` / different results (`diff`, "
        "including a side not reproducible on its own)"
    ),
    "EXIT_USAGE": (
        "bad input: usage, config, TOML, a target that cannot load, a sampler or pruner that "
        "cannot run (e.g. a missing package), `--device cuda` without CUDA, `--gpus` without "
        "CUDA or naming a GPU that is not there, a saved report that fails validation (one "
        "line on stderr)"
    ),
    "EXIT_INCOMPLETE": (
        "a replicate crashed (its results stream was broken, or it lacks trials it should "
        "hold), timed out, or could not run (the report, JSON included, is still written with "
        "what finished) / `diagnose`: the fully controlled runs could not finish / `diff`: the "
        "finished runs agree but a side has runs that did not finish / `report PATH`: a saved "
        "check still awaiting replicates"
    ),
    "EXIT_INTERRUPTED": "interrupted (Ctrl-C, or SIGTERM at any moment after the command started)",
}
"""What each code means, per command. A code added to errors.py without a line here stops the
build, so the exit-code reference cannot miss one."""

CONFIG_ONLY = {
    "target": "the TARGET argument: `train.py`, `pkg.mod:attr` or `file.py:attr` (a relative "
    "`file.py` is relative to the file that names it)",
    "directions": "`--direction`, as a list (`direction`, a string or a list, also works)",
    "sampler_kwargs": "a table: the sampler's Optuna keyword arguments (not `seed`: the "
    "sampler gets `--seed`)",
    "pruner_kwargs": "a table: the pruner's Optuna keyword arguments",
    "args": "a script's arguments (what follows `--` on the command line), a list of strings",
}
"""The config keys that no flag of the same name sets."""


def _command(name: str | None) -> str:
    if name not in flag_table.command_names():
        raise ValueError(f"no command {name!r} (the CLI has {flag_table.command_names()})")
    return flag_table.reference(name)


def _exit_codes(_: str | None) -> str:
    from repro_check import errors

    codes = {k: v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    if set(codes) != set(EXIT_MEANINGS):
        raise ValueError(f"errors.py's codes {sorted(codes)} != the documented {EXIT_MEANINGS}")
    lines = ["| code | name in `errors.py` | meaning |", "| --- | --- | --- |"]
    for name, code in sorted(codes.items(), key=lambda item: item[1]):
        lines.append(f"| {code} | `{name}` | {EXIT_MEANINGS[name]} |")
    return "\n".join(lines)


def schema() -> dict[str, Any]:
    from repro_check.results.saved_schema import report_schema

    return report_schema()


def _type_of(spec: dict[str, Any]) -> str:
    """A field's type in words, a definition as a link to its table."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name})"
    if "anyOf" in spec and "description" not in spec:
        return " or ".join(_type_of(option) for option in spec["anyOf"])
    if "description" in spec:
        text = str(spec["description"])
        refs = [o for o in spec.get("anyOf", []) if "$ref" in o]
        refs += [spec["items"]] if "$ref" in spec.get("items", {}) else []
        return text + "".join(f" ({_type_of(r)})" for r in refs)
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _schema(name: str | None) -> str:
    definitions = schema()["definitions"]
    if name not in definitions:
        raise ValueError(f"no schema definition {name!r} (it has {sorted(definitions)})")
    definition = definitions[name]
    required = set(definition.get("required", ()))
    lines = [f"### {name}", ""]
    if definition.get("description"):
        lines += [" ".join(str(definition["description"]).replace("``", "`").split()), ""]
    lines += ["| field | type | required |", "| --- | --- | --- |"]
    for field, spec in definition.get("properties", {}).items():
        kind = _type_of(spec).replace("|", "\\|")
        lines.append(f"| `{field}` | {kind} | {'yes' if field in required else ''} |")
    return "\n".join(lines)


def _flag_helps() -> dict[str, str]:
    """{config key: the help of the flag that sets it}, over every command."""
    found: dict[str, str] = {}
    for command in flag_table.command_names():
        for flags, _, help_ in flag_table.rows(command):
            for flag in re.findall(r"`--([\w-]+)", flags):
                found.setdefault(flag.replace("-", "_"), f"`--{flag}`: {help_}")
    return found


def _config_keys(_: str | None) -> str:
    from repro_check.plan import config

    helps = _flag_helps()
    lines = ["| key | what it sets |", "| --- | --- |"]
    for key in config.KEYS:
        text = CONFIG_ONLY.get(key) or helps.get(key)
        if text is None:
            raise ValueError(f"config key {key!r} has no flag and no line in CONFIG_ONLY")
        lines.append(f"| `{key}` | {text} |")
    for alias, key in config.ALIASES.items():
        lines.append(f"| `{alias}` | the same as `{key}` |")
    return "\n".join(lines)


def _cause(name: str | None) -> str:
    from repro_check.checks.causes import CAUSES

    for cause in CAUSES:
        if cause.id.value == name:
            return f"**Found by:** {cause.detected_by}."
    raise ValueError(f"no cause {name!r} in the registry")


def _include(name: str | None) -> str:
    allowed = {"CHANGELOG.md", "CONTRIBUTING.md"}
    if name not in allowed:
        raise ValueError(f"include takes one of {sorted(allowed)}, not {name!r}")
    text = (ROOT / name).read_text(encoding="utf-8")
    text = re.sub(r"^# .*\n", "", text, count=1)  # the page has its own title
    # The root file links docs pages as docs/...; the included page sits in docs/ itself.
    text = re.sub(r"\]\(docs/", "](", text)
    return re.sub(r"\]\((CHANGELOG|CONTRIBUTING)\.md", lambda m: f"]({m[1].lower()}.md", text)


GENERATORS: dict[str, Callable[[str | None], str]] = {
    "command": _command,
    "exit-codes": _exit_codes,
    "schema": _schema,
    "config-keys": _config_keys,
    "cause": _cause,
    "include": _include,
}


def expand(markdown: str, *, site: bool = True) -> str:
    """The page with each generated block holding what the code says now. ``site=False`` is
    the text kept in the repository (build-only blocks left empty)."""

    def replace(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind not in GENERATORS:
            raise ValueError(f"unknown marker {match.group(0)} (known: {sorted(GENERATORS)})")
        text = "" if kind in BUILD_ONLY and not site else GENERATORS[kind](argument) + "\n\n"
        opening = f"<!-- generated: {kind}{f' {argument}' if argument else ''} -->"
        return f"{opening}\n\n{text}<!-- end generated -->"

    return MARKER.sub(replace, markdown)


def stale_pages(docs: Path = ROOT / "docs") -> list[Path]:
    """The pages whose generated blocks are not what the code says now."""
    pages = sorted(docs.rglob("*.md"))
    return [p for p in pages if expand(text := p.read_text("utf-8"), site=False) != text]


def refresh(docs: Path = ROOT / "docs") -> list[Path]:
    """Rewrite the stale pages' generated blocks (``python scripts/docs_hooks.py``)."""
    stale = stale_pages(docs)
    for page in stale:
        page.write_text(expand(page.read_text("utf-8"), site=False), encoding="utf-8")
    return stale


def missing(path: str, markdown: str) -> list[str]:
    """What a page that must cover a whole vocabulary leaves out."""
    used = MARKER.findall(markdown)
    if path == "reference/cli.md":
        named = {arg for kind, arg, _ in used if kind == "command"}
        return [f"command {c}" for c in flag_table.command_names() if c not in named]
    if path == "reference/json-report.md":
        named = {arg for kind, arg, _ in used if kind == "schema"}
        return [f"schema {d}" for d in schema()["definitions"] if d not in named]
    if path == "explanation/diagnose.md":
        from repro_check.vocab import CauseId

        headings = set(re.findall(r"^#{2,4} `(\w+)`", markdown, flags=re.MULTILINE))
        return [f"cause {c.value}" for c in CauseId if c.value not in headings]
    if path == "explanation/controls.md":
        from repro_check.plan.settings import Controls

        rows = set(re.findall(r"^\| `(\w+)` \|", markdown, flags=re.MULTILINE))
        return [f"control {c}" for c in Controls.names() if c not in rows] + [
            f"(no such control) {r}" for r in sorted(rows - set(Controls.names()))
        ]
    return []


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: expand the markers of one page, and refuse a page that misses an entry."""
    path = page.file.src_uri
    left_out = missing(path, markdown)
    if left_out:
        raise ValueError(f"docs/{path} leaves out: {', '.join(left_out)}")
    return expand(markdown)


if __name__ == "__main__":
    for changed in refresh():
        print(f"refreshed {changed.relative_to(ROOT)}")
