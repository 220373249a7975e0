"""The package's import graph has no cycle: every module imports only downward.

Every ``import``/``from ... import`` in every module counts, wherever it is: module level,
inside a function (lazy imports), under ``if TYPE_CHECKING:``. A lazy import hides a cycle from
the interpreter, not from the layering, so it is no excuse. The implicit import of a module's
parent packages is not an edge (``repro_check/__init__.py`` loads ``api`` lazily for
``repro_check.check``; a module that does not name the package root does not depend on it).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import repro_check

PACKAGE_DIR = Path(repro_check.__file__).parent
PACKAGE = "repro_check"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module ``name`` is, or the nearest enclosing one (for ``pkg.mod.attr``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (explicitly, anywhere in its source); parsed
    once per test process (the tests only read it)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module or ""
                # ``from pkg import mod``: the submodule; ``from mod import attr``: the module.
                targets = [f"{source}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.split(".")[0] != PACKAGE:
                    continue
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    edges.add(resolved)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), each as one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_one_cycle(graph, component) for component in components]


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A concrete cycle inside one strongly connected component, for a readable failure."""
    members = set(component)
    start = component[0]
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return component  # pragma: no cover - a component always holds a cycle


def test_the_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The parser itself: the edges the acyclicity test relies on are found."""
    graph = import_graph()
    assert len(graph) > 20
    # A function-level import (cli loads the checks only when a command runs).
    assert "repro_check.checks.run" in graph["repro_check.cli"]
    # ``from repro_check.render import fmt`` is an edge to the submodule.
    assert "repro_check.render.fmt" in graph["repro_check.render.console"]


def test_find_cycles_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles tolerated for now (none): an entry must go once its cycle is gone."""


def test_no_import_cycle_in_the_package() -> None:
    cycles = [c for c in find_cycles(import_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_known_cycles_still_exist() -> None:
    """An entry of KNOWN_CYCLES that is no cycle any more must go (the list only shrinks)."""
    found = {frozenset(c) for c in find_cycles(import_graph())}
    assert found >= KNOWN_CYCLES, f"fixed, remove from KNOWN_CYCLES: {KNOWN_CYCLES - found}"


def test_no_module_imports_the_package_root() -> None:
    """``__version__`` comes from ``__about__``, DEVICE_ENV from ``execution.devices``."""
    graph = import_graph()
    offenders = sorted(name for name, edges in graph.items() if PACKAGE in edges)
    assert offenders == []


DESIGN = PACKAGE_DIR.parent / "docs" / "explanation" / "architecture.md"


def design_layers() -> list[set[str]]:
    """The architecture page's ``layers`` block, top line first: each a set of top-level names (a
    subpackage such as ``render`` or a module such as ``cli``)."""
    text = DESIGN.read_text(encoding="utf-8")
    block = text.split("```layers\n", 1)[1].split("```", 1)[0]
    return [set(line.split()) for line in block.splitlines() if line.strip()]


def _top(module: str) -> str:
    """``repro_check.render.fmt`` -> ``render``; the package root -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(graph: dict[str, set[str]], layers: list[set[str]]) -> list[str]:
    """Every import from a layer up to a higher one, as ``importer -> imported``."""
    rank = {name: depth for depth, names in enumerate(layers) for name in names}
    found = []
    for module, edges in sorted(graph.items()):
        for target in sorted(edges):
            if rank[_top(target)] < rank[_top(module)]:
                found.append(f"{module} -> {target}")
    return found


KNOWN_LAYER_VIOLATIONS: set[str] = set()
"""Upward imports tolerated for now: an entry must go once its import is gone."""


def test_every_part_of_the_package_has_one_layer() -> None:
    layers = design_layers()
    named = [name for names in layers for name in names]
    assert len(named) == len(set(named)), "a name is on two lines of the architecture page's layers"
    tops = {_top(module) for module in import_graph()}
    assert tops == set(named), (
        f"in the package, not in docs/explanation/architecture.md: {tops - set(named)}; "
        + (f"in docs/explanation/architecture.md, not in the package: {set(named) - tops}")
    )


def test_layer_violations_are_found() -> None:
    graph = {"repro_check.plan.a": {"repro_check.render.b"}, "repro_check.render.b": set()}
    assert layer_violations(graph, [{"render"}, {"plan"}]) == [
        "repro_check.plan.a -> repro_check.render.b"
    ]
    assert layer_violations(graph, [{"plan"}, {"render"}]) == []


def test_every_import_points_down_the_layers_of_design_md() -> None:
    found = set(layer_violations(import_graph(), design_layers()))
    new = sorted(found - KNOWN_LAYER_VIOLATIONS)
    assert new == [], "imports up the architecture page's layers:\n" + "\n".join(new)
    fixed = sorted(KNOWN_LAYER_VIOLATIONS - found)
    assert fixed == [], "fixed, remove from KNOWN_LAYER_VIOLATIONS:\n" + "\n".join(fixed)
