"""``sampler_seed``: a sampler built without a seed, found by switching the sampler seed off.

For a script its fix is the script's own line rewritten (``causes.edits``): ``seed=0`` added
where it built the sampler, whatever its class (Optuna's, or one of its own that takes a
``seed``), the library's own parameter where an integration built it (``optuna_seed=0`` where
the script built ``LightGBMTunerCV``), or ``sampler=`` added to a ``create_study`` that left
Optuna to build an unseeded default. For an objective, repro-check builds the study: the fix is
the same study seeded, as code the user can run themselves.
"""

from __future__ import annotations

import ast
import linecache
from collections.abc import Sequence
from dataclasses import dataclass

from repro_check.checks.causes.edits import add_keyword, called_name, fix_text, source_text
from repro_check.checks.causes.model import (
    Ablation,
    Finding,
    FixContext,
    KnownCause,
    ablation_evidence,
    where_runs_part,
)
from repro_check.results.diagnosis import Edit, Location
from repro_check.results.records import RunRecord, StudyRecord
from repro_check.results.script_notes import seed_keyword, unseeded
from repro_check.vocab import CauseId, sampler_spec

# -- sampler_seed


def _first_with_studies(runs: Sequence[RunRecord]) -> RunRecord | None:
    return next((r for r in runs if r.studies), None)


@dataclass(frozen=True)
class Site:
    """One line where the script left a sampler unseeded, and its fix there."""

    location: Location | None
    why: str
    """What is missing, in the user's terms (``TPESampler() has no seed``)."""
    advice: str
    """The fix in words, for a site without an edit (``pass seed=0``)."""
    edit: Edit | None


def _location(at: str | None) -> Location | None:
    file, _, line = (at or "").rpartition(":")
    if not file or not line.isdigit():
        return None
    return Location(file, int(line), linecache.getline(file, int(line)).strip())


def _optuna_names(tree: ast.Module) -> list[str]:
    """How the script can name Optuna's samplers, best first: ``optuna.samplers.`` after
    ``import optuna``, ``opt.samplers.`` after ``import optuna as opt``, ``samplers.`` after
    ``from optuna import samplers``, and each sampler class it imported by name
    (``TPESampler=T`` after ``from optuna.samplers import TPESampler as T``)."""
    names = [name for node in ast.walk(tree) for name in _import_names(node)]
    return sorted(set(names), key=lambda n: ("=" in n, not n.startswith("optuna."), n))


def _import_names(node: ast.AST) -> list[str]:
    """What one import statement binds that names Optuna's samplers (``_optuna_names``)."""
    if isinstance(node, ast.Import):
        return [
            f"{alias.asname or 'optuna'}.samplers."
            if alias.name == "optuna"
            else f"{alias.asname or 'optuna.samplers'}."
            for alias in node.names
            if alias.name in ("optuna", "optuna.samplers")
        ]
    if not isinstance(node, ast.ImportFrom) or node.level or node.module not in _OPTUNA:
        return []
    return [
        f"{alias.asname or 'samplers'}."
        if node.module == "optuna" and alias.name == "samplers"
        else f"{alias.name}={alias.asname or alias.name}"
        for alias in node.names
    ]


_OPTUNA = ("optuna", "optuna.samplers")


def sampler_expression(file: str, cls: str, seed: int) -> str | None:
    """``optuna.samplers.TPESampler(seed=0)`` as ``file`` can write it with what it imported
    (None: it imported neither Optuna, its samplers nor ``cls``)."""
    parsed = source_text(file)
    for name in _optuna_names(parsed[1]) if parsed is not None else ():
        if "=" not in name:
            return f"{name}{cls}(seed={seed})"
        imported, _, bound = name.partition("=")
        if imported == cls:
            return f"{bound}(seed={seed})"
    return None


def _site(study: StudyRecord, seed: int) -> Site:
    sampler = study.sampler
    if sampler.at is None:  # Optuna's default sampler: create_study gets a seeded one
        where = _location(study.at)
        why = f"create_study() has no sampler (Optuna's default {sampler.cls} is unseeded)"
        expression = sampler_expression(where.file, sampler.cls, seed) if where else None
        edit = (
            add_keyword(where, "create_study", "sampler", expression)
            if where is not None and expression is not None
            else None
        )
        advice = f"pass sampler=optuna.samplers.{sampler.cls}(seed={seed}) to create_study"
        return Site(where, why, advice, edit)
    where = _location(sampler.at)
    keyword = seed_keyword(sampler)
    if sampler.via is not None:
        if keyword is None:
            why = f"{sampler.via}() builds {sampler.cls}() without seed and takes no seed"
            return Site(where, why, f"ask {sampler.via}'s library how to seed it", None)
        why = f"{sampler.via}() has no {keyword} (it builds the {sampler.cls})"
        callee = sampler.via
    else:
        why, callee = f"{sampler.cls}() has no seed", sampler.cls
        keyword = keyword or "seed"
    given = _given(where, callee, keyword) if where is not None else None
    if given is not None:  # seed=args.seed, None in every run: no keyword to add
        why = f"{callee}({keyword}={given}) got {keyword}=None"
        return Site(where, why, f"give {given} a value (such as {seed})", None)
    edit = add_keyword(where, callee, keyword, str(seed)) if where is not None else None
    return Site(where, why, f"pass {keyword}={seed}", edit)


def _given(where: Location, callee: str, keyword: str) -> str | None:
    """The expression the script passes as ``keyword`` to ``callee`` in its statement at
    ``where`` (``args.seed``), when it is not a literal None."""
    parsed = source_text(where.file)
    if parsed is None:
        return None
    text, tree = parsed
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or called_name(node.func) != callee:
            continue
        if not node.lineno <= where.line <= (node.end_lineno or node.lineno):
            continue
        for given in node.keywords:
            if given.arg == keyword and not (
                isinstance(given.value, ast.Constant) and given.value.value is None
            ):
                return ast.get_source_segment(text, given.value)
    return None


def sampler_sites(runs: Sequence[RunRecord], seed: int) -> list[Site]:
    """Each line where a script built a sampler without a seed it could take (or created a
    study with Optuna's unseeded default), in study order, each line once."""
    ref = _first_with_studies(runs)
    sites: dict[tuple[str, str], Site] = {}
    for study in ref.studies if ref is not None else ():
        if unseeded(study.sampler):
            site = _site(study, seed)
            sites.setdefault((str(site.location), site.why), site)
    return list(sites.values())


def _first(sites: Sequence[Site]) -> Site | None:
    """The site the cause names (its location, edit and printed code): the first one its
    fix can rewrite, else the first."""
    return next((s for s in sites if s.edit is not None), next(iter(sites), None))


def _comment(site: Site, prefix: str = "") -> str:
    where = f"{site.location}: " if site.location is not None else ""
    return f"# {prefix}{where}{site.why}: {site.advice}"


def sampler_fix(runs: Sequence[RunRecord], seed: int) -> str | None:
    """The fix at each line where a script built a sampler without a seed: the first as its
    line rewritten (the cause's edit), any other as a comment naming its line."""
    sites = sampler_sites(runs, seed)
    first = _first(sites)
    if first is None:
        return None
    lines = [fix_text(first.edit, first.why) if first.edit is not None else _comment(first)]
    lines += [_comment(site, "also ") for site in sites if site is not first]
    return "\n".join(lines)


def sampler_location(runs: Sequence[RunRecord]) -> Location | None:
    """The first line where a script built a sampler without a seed it could take (or
    created a study with Optuna's default one, or built the library object that built it)."""
    first = _first(sampler_sites(runs, 0))
    return first.location if first is not None else None


def _sampler_seed_evidence(finding: Finding) -> str:
    if finding.ablation is not None:
        return ablation_evidence(finding)
    # every control on, yet the params differ: the sampler ignores the seed it was given
    return (
        "with every control on, the sampler still proposes different params: "
        f"{where_runs_part(finding.experiment)}"
    )


def _study_call(ctx: FixContext, sampler: str) -> str:
    """``study = optuna.create_study(...)`` as repro-check builds the objective's study."""
    directions = ctx.study.directions
    args = [f"sampler={sampler}"]
    if len(directions) > 1:
        args.insert(0, f"directions={list(directions)!r}")
    elif directions and directions[0] != "minimize":
        args.insert(0, f"direction={directions[0]!r}")
    return f"study = optuna.create_study({', '.join(args)})"


def _objective_fix(ctx: FixContext, blocking: bool) -> str:
    """The objective's study seeded, as complete code: repro-check builds it with the
    ``sampler_seed`` control; this is the same study for a script of the user's own."""
    spec = sampler_spec(ctx.study.sampler)
    kwargs = {k: v for k, v in ctx.study.sampler_kwargs.items() if k.isidentifier()}
    given = "".join(f"{k}={v!r}, " for k, v in kwargs.items() if k != "seed")
    if spec is None:
        module, _, factory = ctx.study.sampler.rpartition(":")
        call = f"{factory}({given}seed={ctx.seed})"
        head = "# make your sampler factory honour its seed argument"
        if module.replace(".", "").replace("_", "").isalnum() and not module.endswith(".py"):
            return f"{head}; seeded:\nfrom {module} import {factory}\n\nsampler = {call}"
        return f"{head} (it is {factory} in {module}); seeded:\nsampler = {call}"
    if blocking:
        head = f"# {spec.optuna_class} proposed different params under the same seed"
    else:
        head = "# repro-check seeds the study it builds (--controls sampler_seed); yours, seeded"
    sampler = f"optuna.samplers.{spec.optuna_class}({given}seed={ctx.seed})"
    return f"{head}:\nimport optuna\n\n{_study_call(ctx, sampler)}"


def _sampler_seed_fix(finding: Finding) -> str:
    ctx = finding.context
    if not ctx.script:
        return _objective_fix(ctx, finding.ablation is None)
    at_lines = sampler_fix(finding.runs_as_written, ctx.seed)
    if at_lines is not None:
        return at_lines
    if finding.ablation is None:
        return (
            "# the script's sampler proposes different params even when seeded: make it draw "
            "every random number from its seed"
        )
    return (
        f"# give the sampler the script builds a seed (seed={ctx.seed}): repro-check could "
        "not tell which line builds it"
    )


def _sampler_seed_location(finding: Finding) -> Location | None:
    return sampler_location(finding.runs_as_written) if finding.context.script else None


def _sampler_seed_edit(finding: Finding) -> Edit | None:
    if not finding.context.script:
        return None
    first = _first(sampler_sites(finding.runs_as_written, finding.context.seed))
    return first.edit if first is not None else None


SAMPLER_SEED = KnownCause(
    CauseId.SAMPLER_SEED,
    "no_sampler_seed (and full control, when its runs get different params)",
    _sampler_seed_evidence,
    _sampler_seed_fix,
    _sampler_seed_location,
    edit=_sampler_seed_edit,
    ablations=(Ablation("no_sampler_seed", ("sampler_seed",), "the sampler seed"),),
)

CAUSES = (SAMPLER_SEED,)
