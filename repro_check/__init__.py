"""repro-check: is your seeded Optuna study reproducible, how much does it vary, and why not.

The public API is deliberately small and cheap to import: heavy modules (optuna, torch) load
only when a check actually runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from repro_check.__about__ import __version__
from repro_check.execution.devices import DEVICE_ENV

if TYPE_CHECKING:
    from repro_check.api import check

__all__ = ["DEVICE_ENV", "__version__", "check", "device"]


def device() -> str:
    """The device the objective should train on: "cuda" or "cpu".

    Inside a repro-check worker this is the device the check was planned for (``--device``);
    outside one it is "cuda" when torch sees a GPU, else "cpu", so the same objective runs
    unchanged in a plain script.
    """
    chosen = os.environ.get(DEVICE_ENV)
    if chosen:
        return chosen
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def __getattr__(name: str) -> Any:
    """``check`` loads on first use, so ``import repro_check`` stays cheap."""
    if name == "check":
        from repro_check.api import check

        globals()["check"] = check
        return check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
