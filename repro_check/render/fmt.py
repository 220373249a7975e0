"""Number and text formatting shared by the text renderers (console, Markdown)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from repro_check.compare import Divergence, ParamSpread, Stats


def num(value: float | None, digits: int = 6) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def param(value: Any) -> str:
    return num(value) if isinstance(value, float) else repr(value)


def stats_line(stats: Stats | None) -> str:
    if stats is None:
        return "-"
    return f"{num(stats.mean)} ± {num(stats.std, 3)}  ({num(stats.min)} .. {num(stats.max)})"


def spread_line(spread: ParamSpread) -> str:
    if spread.stats is not None:
        s = spread.stats
        return f"std {num(s.std, 3)}, range {num(s.range, 3)} ({num(s.min)} .. {num(s.max)})"
    return ", ".join(f"{value} ×{count}" for value, count in sorted(spread.counts.items()))


def divergence_line(divergence: Divergence) -> str:
    size = ""
    if divergence.max_abs_diff is not None:
        size = (
            f"; max |Δ| {num(divergence.max_abs_diff, 3)}, "
            f"max rel {num(divergence.max_rel_diff, 3)}"
        )
    return f"trial {divergence.trial}, {divergence.field}: {divergence.detail}{size}"


def environment_line(env: Mapping[str, Any]) -> str:
    if not env:
        return "unknown (no run finished)"
    packages = env.get("packages", {})
    parts = [f"Python {env.get('python', '?')}", str(env.get("platform", "?"))]
    parts += [f"{name} {packages[name]}" for name in ("optuna", "numpy") if name in packages]
    torch = env.get("torch")
    if torch:
        gpus = ", ".join(torch.get("gpus") or []) or "no GPU"
        cuda = f"CUDA {torch['cuda']}" if torch.get("cuda") else "CPU build"
        parts.append(f"torch {torch.get('version')} ({cuda}, {gpus})")
    elif "torch" in packages:
        parts.append(f"torch {packages['torch']} (unused)")
    parts.append(f"threads {env.get('threads', '?')}")
    return " · ".join(parts)
