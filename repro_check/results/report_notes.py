"""The notes a run report derives from its runs: why trials failed, what the shell fixed,
which environments and GPU models the runs came from and whether their differences line up.

Pure functions of the runs (and the plan's tolerance and controls): ``RunReport.notes`` calls
them in the order a reader needs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from repro_check.plan.settings import Controls, Tolerance
from repro_check.results.comparison import distinct_histories, first_divergence
from repro_check.results.fingerprint import fingerprint
from repro_check.results.records import RunRecord

_RETURNED = "objective returned "
_TIMES = {1: "once", 2: "twice"}
_REASON_CHARS = 200


def returned_count(error: str | None) -> int | None:
    """How many values the objective returned, from the worker's "objective returned X"
    failure (a tuple or list counts its items; anything else is 1 value); None otherwise."""
    if not error or not error.startswith(_RETURNED):
        return None
    text = error[len(_RETURNED) :].strip()
    if not text or text.split(" ", 1)[0] == "None":  # "None (is a `return` missing?)"
        return None
    if not (text[0] in "([" and text[-1] in ")]"):
        return 1
    inner = text[1:-1].strip().removesuffix(",").strip()
    if not inner:
        return 0
    depth, count, quote = 0, 1, ""
    for char in inner:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            count += 1
    return count


def direction_advice(returned: int, directions: int) -> str:
    """ "the objective returned 2 values; pass --direction twice" (and the converse)."""
    values = f"{returned} value" + ("" if returned == 1 else "s")
    times = _TIMES.get(returned, f"{returned} times")
    if returned > directions:
        return (
            f"the objective returned {values}; pass --direction {times} "
            "(once per objective, e.g. --direction minimize --direction maximize)"
        )
    given = f"{directions} --direction" + ("" if directions == 1 else "s")
    return f"the objective returned {values} but {given} were given; pass --direction {times}"


def failure_reasons(run: RunRecord) -> list[tuple[str, int]]:
    """Why the run's trials failed: each distinct error with how often, most frequent first."""
    counts: dict[str, int] = {}
    for trial in run.trials:
        if trial.state != "FAIL":
            continue
        reason = (trial.error or "no error recorded").strip()
        if len(reason) > _REASON_CHARS:
            reason = reason[: _REASON_CHARS - 1] + "…"
        counts[reason] = counts.get(reason, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


_SHOWN_REASONS = 3


def reasons_text(reasons: Sequence[tuple[str, int]]) -> str:
    total = sum(count for _, count in reasons)
    listed = [f"{reason} ({count})" for reason, count in reasons[:_SHOWN_REASONS]]
    rest = reasons[_SHOWN_REASONS:]
    if rest:
        others = sum(count for _, count in rest)
        listed.append(f"{len(rest)} other reason{'s' if len(rest) > 1 else ''} ({others})")
    return f"{total} failed trial{'' if total == 1 else 's'}: {'; '.join(listed)}"


SHELL_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def shell_notes(runs: Sequence[RunRecord], controls: Controls) -> list[str]:
    """What the user's shell fixed that a control would otherwise own: the verdict holds with
    it, and a shell without it (a fresh CI job) may answer otherwise."""
    env = next((r.environment.get("env") for r in runs if r.environment), None)
    if not isinstance(env, Mapping):
        return []
    notes = []
    hash_seed = env.get("PYTHONHASHSEED")
    if not controls.hash_seed and hash_seed not in (None, "", "random"):
        notes.append(
            f"PYTHONHASHSEED={hash_seed} comes from your shell (the hash_seed control is off): "
            "where it is unset, string hashes, and so set and dict order, change per process"
        )
    pinned = [f"{name}={env[name]}" for name in SHELL_THREAD_VARS if name in env]
    if not controls.threads and pinned:
        notes.append(
            f"{', '.join(pinned)} come{'s' if len(pinned) == 1 else ''} from your shell (the "
            "threads control is off): where unset, the libraries use one thread per core"
        )
    return notes


def environment_notes(runs: Sequence[RunRecord], tol: Tolerance) -> list[str]:
    """When runs come from several environments (machines, GPUs, package versions), group
    them and say whether the differences line up with the machines."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        if run.environment:
            groups.setdefault(fingerprint(dict(run.environment)), []).append(run)
    if len(groups) < 2:
        return []
    described = "; ".join(
        f"{key}: runs {', '.join(str(r.index) for r in members)} "
        f"({_machine(members[0].environment)})"
        for key, members in groups.items()
    )
    notes = [f"runs come from {len(groups)} environments: {described}"]
    finished = {key: [r for r in members if r.finished] for key, members in groups.items()}
    within = [distinct_histories(members, tol) for members in finished.values() if members]
    overall = distinct_histories([r for m in finished.values() for r in m], tol)
    if overall > 1 and all(n == 1 for n in within):
        notes.append(
            "the differences line up with the environments: runs agree within each "
            "environment and differ across them (a cross-hardware difference)"
        )
    elif overall > 1:
        notes.append("runs differ even within one environment: not only a hardware difference")
    else:
        notes.append("results agree across the environments")
    return notes + gpu_notes(runs, tol)


def _gpu_name(run: RunRecord) -> str | None:
    gpu = run.environment.get("gpu") if run.environment else None
    name = gpu.get("name") if isinstance(gpu, Mapping) else None
    return str(name) if name else None


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def gpu_notes(runs: Sequence[RunRecord], tol: Tolerance) -> list[str]:
    """Runs grouped by GPU model: where runs on different models part, and whether runs on
    the same model agree ("runs on H100 and H200 part at trial 3; runs on the same model
    agree"). Nothing when every run had the same model (or none)."""
    models: dict[str, list[RunRecord]] = {}
    for run in runs:
        name = _gpu_name(run)
        if name is not None:
            models.setdefault(name, []).append(run)
    if len(models) < 2:
        return []
    listed = "; ".join(
        f"{name}: run{'s' if len(members) > 1 else ''} {', '.join(str(r.index) for r in members)}"
        for name, members in models.items()
    )
    notes = [f"runs used {len(models)} GPU models: {listed}"]
    finished = {name: [r for r in members if r.finished] for name, members in models.items()}
    compared = [name for name, members in finished.items() if members]
    if len(compared) < 2:
        return notes
    divergence = first_divergence([finished[name][0] for name in compared], tol)
    across = f"runs on {_and(compared)}"
    across += (
        " agree"
        if divergence is None
        else f" part at trial {divergence.trial} ({divergence.field})"
    )
    if all(len(finished[name]) < 2 for name in compared):  # one run per model: no "within"
        notes.append(across)
        return notes
    same = [distinct_histories(finished[name], tol) for name in compared]
    within = (
        "runs on the same model agree"
        if all(n == 1 for n in same)
        else "runs differ even on the same model"
    )
    notes.append(f"{across}; {within}")
    return notes


def _machine(env: Mapping[str, Any]) -> str:
    torch = env.get("torch") or {}
    gpus = ", ".join(torch.get("gpus") or []) or "no GPU"
    gpu = env.get("gpu")
    if isinstance(gpu, Mapping) and gpu.get("name"):
        gpus = str(gpu["name"])  # the one GPU the worker was pinned to
    return f"{env.get('cpu', '?')}, {gpus}, Python {env.get('python', '?')}"
