"""The environment fingerprint: runs grouped by machine and software in a report.

The worker collects the environment (``execution.environment``); grouping the runs of a report
by it is the report's business, saved or live, so it lives here and ``results`` needs nothing
from ``execution``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GPU_IDENTITY = ("index", "uuid")
"""Which physical GPU a run had, left out of the fingerprint: two cards of one model with
one driver are one environment (runs are grouped by GPU model, not by card)."""


def fingerprint(environment: dict[str, Any]) -> str:
    """A short stable hash of an environment, to group runs by machine and software."""
    stable = {k: v for k, v in environment.items() if k != "env"}
    gpu = stable.get("gpu")
    if isinstance(gpu, dict):
        stable["gpu"] = {k: v for k, v in gpu.items() if k not in GPU_IDENTITY}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]
