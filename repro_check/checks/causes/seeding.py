"""Fixes for randomness a seed left out lets in, written as edits of the user's lines: a
library's ``random_state`` passed where the user built or called it (the audit's ``library``
sites), the global streams seeded before the first draw or the study (its ``global`` sites),
and ``n_jobs=1`` at the script's ``optimize`` call.

The user's file is read as untrusted input, as ``edits`` reads it: one that cannot be read or
parsed gives no edit (the cause keeps its words), never an error.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from repro_check.checks.causes.edits import (
    add_keyword,
    insert_before,
    parsed_source,
    statement_location,
)
from repro_check.checks.causes.model import AuditSite, FixContext
from repro_check.execution.audit_library import GLOBAL, LIBRARY, parse_library_source
from repro_check.results.diagnosis import Edit, Location
from repro_check.results.records import RunRecord

BEFORE_STUDY = -1
"""The trial number the audit gives a draw made outside any trial (before the study)."""

_SEEDS = {
    "random": ("random", "random", "{}.seed({})"),
    "numpy": ("numpy", "np", "{}.random.seed({})"),
    "torch": ("torch", "torch", "{}.manual_seed({})"),
}
"""Stream -> (module, the name to import it as, the call that seeds its global stream)."""


def site_of(site: Mapping[str, Any]) -> AuditSite:
    """One audit site (a worker's dict) as the causes read it."""
    where = Location(str(site["file"]), int(site["line"]), str(site["text"]))
    return AuditSite(where, str(site["source"]), str(site["kind"]), tuple(site["trials"]))


def merged_sites(
    audits: Iterable[Mapping[str, Any]], wanted: Iterable[str], by_source: bool = False
) -> list[AuditSite]:
    """The audits' sites of the ``wanted`` kinds, one per line (``by_source``: per line and
    source) with the runs' trials merged, in the order the first run met them (the order the
    code ran them)."""
    kinds = set(wanted)
    merged: dict[tuple[str, int, str], dict[str, Any]] = {}
    for audit in audits:
        for site in audit.get("sites", []):
            if site.get("kind") not in kinds:
                continue
            source = str(site["source"]) if by_source else ""
            key = (str(site["file"]), int(site["line"]), source)
            known = merged.setdefault(key, {**site, "trials": []})
            known["trials"] = sorted({*known["trials"], *site.get("trials", [])})
    return [site_of(s) for s in merged.values()]


def in_worker(site: AuditSite) -> bool:
    """A library site whose draws happened in a worker process the script started."""
    parsed = parse_library_source(site.source)
    return site.kind == LIBRARY and parsed is not None and parsed[2]


def library_sites(audits: Iterable[Mapping[str, Any]], worker: bool) -> list[AuditSite]:
    """The lines that left a library's seed unset, drawn in this process or in a worker."""
    return [s for s in merged_sites(audits, (LIBRARY,)) if in_worker(s) == worker]


def global_sites(audits: Iterable[Mapping[str, Any]]) -> list[AuditSite]:
    """The user's own lines that drew from the global random/NumPy streams."""
    return merged_sites(audits, (GLOBAL,), by_source=True)


def shown_trials(site: AuditSite) -> tuple[int, ...]:
    """The trials a site drew in (a draw before the study is no trial)."""
    return tuple(t for t in site.trials if t >= 0)


def statement_at(where: Location) -> Location:
    """``where`` moved to the first line of its statement (a call spread over lines)."""
    return statement_location(where.file, where.line) or where


# -- a library's seed -----------------------------------------------------------------------


def library_call(site: AuditSite) -> tuple[str, str]:
    """(callee, keyword) of a library site: ``("RandomForestClassifier", "random_state")``."""
    parsed = parse_library_source(site.source)
    return (parsed[0], parsed[1]) if parsed is not None else ("", "random_state")


def library_edit(site: AuditSite, seed: int) -> Edit | None:
    """The user's statement with the seed passed to the call that left it out."""
    callee, keyword = library_call(site)
    if not callee:
        return None
    return add_keyword(site.location, callee, keyword, str(seed))  # the site's own line


def library_why(site: AuditSite) -> str:
    callee, keyword = library_call(site)
    if in_worker(site):
        return (
            f"{callee}() has no {keyword}: it draws from the global NumPy stream of each "
            "joblib worker process, which no seed in the script's process reaches"
        )
    return f"{callee}() has no {keyword}: it draws from NumPy's global stream"


# -- the global streams ---------------------------------------------------------------------


def _module_names(tree: ast.Module) -> dict[str, str]:
    """Module -> the name the file's top level imports it as (``numpy`` -> ``np``)."""
    names: dict[str, str] = {}
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If | ast.Try):  # imports under ``if``/``try`` at top level
            body += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
        if not isinstance(node, ast.Import):
            continue
        for alias in node.names:
            top = alias.name.split(".")[0]
            if alias.asname is None:
                names.setdefault(top, top)
            elif "." not in alias.name:
                names.setdefault(alias.name, alias.asname)
    return names


def seeding_code(file: str, streams: Iterable[str], seed: str) -> str:
    """The statements that seed ``streams`` (``random``, ``numpy``, ``torch``) with the
    expression ``seed``, by the names ``file`` imports them as (an import first where it
    imports none)."""
    tree = parsed_source(file)
    names = _module_names(tree) if tree is not None else {}
    imports, calls = [], []
    for stream in ("random", "numpy", "torch"):
        if stream not in streams:
            continue
        module, alias, call = _SEEDS[stream]
        name = names.get(module)
        if name is None:
            name = alias
            imports.append(f"import {module}" + (f" as {alias}" if alias != module else ""))
        calls.append(call.format(name, seed))
    return "\n".join([*imports, "; ".join(calls)])


def streams_of(sites: Sequence[AuditSite], torch: bool) -> set[str]:
    """The global streams the sites drew from (all, where none is known)."""
    streams = {"random" if s.source.startswith("random.") else "numpy" for s in sites}
    streams = streams or {"random", "numpy"}
    return streams | ({"torch"} if torch else set())


def _enclosing_function(tree: ast.Module, line: int) -> ast.FunctionDef | None:
    found = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno or node.lineno
            if node.lineno < line <= end and (found is None or node.lineno > found.lineno):
                found = node
    return found if isinstance(found, ast.FunctionDef) else None


def trial_seed(where: Location, objective: str, seed: int) -> str:
    """The seed expression at ``where``: the trial's own number inside the objective (the
    ``objective`` function's first argument: each trial gets its own, every run the same),
    else ``seed``."""
    tree = parsed_source(where.file)
    function = _enclosing_function(tree, where.line) if tree is not None else None
    if function is None or function.name != objective or not function.args.args:
        return str(seed)
    trial = function.args.args[0].arg
    return f"{seed} * 100_003 + {trial}.number" if seed else f"{trial}.number"


def study_line(runs: Sequence[RunRecord]) -> Location | None:
    """Where the script created its first study (``StudyRecord.at``)."""
    for run in runs:
        for study in run.studies:
            file, _, line = (study.at or "").rpartition(":")
            if file and line.isdigit():
                return Location(file, int(line), "")
    return None


def seeding_edit(where: Location, streams: Iterable[str], seed: str) -> Edit | None:
    """The streams seeded just before the statement at ``where``."""
    return insert_before(where, seeding_code(where.file, streams, seed))


# -- n_jobs ---------------------------------------------------------------------------------


def optimize_calls(files: Iterable[str]) -> list[Location]:
    """The statements in ``files`` that call ``optimize`` with an ``n_jobs`` other than 1."""
    found = []
    for file in dict.fromkeys(files):
        tree = parsed_source(file)
        for node in ast.walk(tree) if tree is not None else ():
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            jobs = next((k for k in node.keywords if k.arg == "n_jobs"), None)
            one = isinstance(getattr(jobs, "value", None), ast.Constant) and jobs.value.value == 1  # type: ignore[union-attr]
            if node.func.attr == "optimize" and jobs is not None and not one:
                found.append(statement_at(Location(file, node.lineno, "")))
    return sorted(found, key=lambda w: (w.file, w.line))


def objective_name(target: str) -> str:
    return target.rpartition(":")[2] if ":" in target else "objective"


def draws_shown(sites: list[AuditSite]) -> str:
    names = list(dict.fromkeys(f"{s.source}()" for s in sites))
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{shown} draw{'s' if len(names) == 1 else ''} from the global streams"


def first_line(sites: list[AuditSite]) -> list[AuditSite]:
    """The sites at the first site's line (two draws on one line are one place)."""
    first = sites[0].location
    return [s for s in sites if (s.location.file, s.location.line) == (first.file, first.line)]


def global_seeding(
    ctx: FixContext, audits: Iterable[Mapping[str, Any]], runs_as_written: Sequence[RunRecord]
) -> tuple[Edit, str] | None:
    """Where the global streams get seeded, and why there: before the first draw made before
    the study (the script's top level), else before the script creates its study, else (an
    objective) before its first draw, from the trial's number."""
    sites = global_sites(audits)
    streams = streams_of(sites, ctx.torch_used)
    early = next((s for s in sites if BEFORE_STUDY in s.trials), None)
    study = study_line(runs_as_written) if ctx.script else None
    if early is not None:
        where, seed = statement_at(early.location), str(ctx.seed)
        why = f"{draws_shown(first_line([early, *sites]))} before the study: seed them first"
    elif study is not None:
        where, seed = study, str(ctx.seed)
        drawn = f"{draws_shown(sites)} in the trials; " if sites else ""
        why = f"{drawn}seed the global streams once, before the study"
    elif sites:
        where = statement_at(sites[0].location)
        seed = trial_seed(where, objective_name(ctx.target), ctx.seed)
        why = f"{draws_shown(first_line(sites))}: seed them from the trial's number"
    else:
        return None
    edit = seeding_edit(where, streams, seed)
    return (edit, why) if edit is not None else None
