"""How a shared check tells a live replicate from a dead one: a heartbeat every few seconds,
and ``--stale-after`` seconds without one. The plan validates ``--stale-after`` against these
limits before anything runs, so they live here, below ``storage/`` which beats by them."""

from __future__ import annotations

import math

DEFAULT_STALE_AFTER = 120.0
"""``--stale-after`` when none is given: a replicate silent for two minutes is dead."""

HEARTBEATS_PER_WINDOW = 4
"""A live replicate beats this many times within ``--stale-after`` seconds."""
MIN_HEARTBEAT_INTERVAL = 0.5
MAX_HEARTBEAT_INTERVAL = 30.0
MIN_STALE_AFTER = HEARTBEATS_PER_WINDOW * MIN_HEARTBEAT_INTERVAL
"""Below this a live replicate would miss its window between two beats and look dead."""
MAX_STALE_AFTER = 365 * 24 * 3600.0


def check_stale_after(value: float) -> float:
    """``--stale-after`` must leave a live replicate room for several heartbeats, and stay a
    number that time arithmetic can use. Raises ``ValueError`` (the caller names the flag)."""
    if not math.isfinite(value) or not MIN_STALE_AFTER <= value <= MAX_STALE_AFTER:
        raise ValueError(
            f"must be between {MIN_STALE_AFTER:g} s ({HEARTBEATS_PER_WINDOW} heartbeats of "
            f"{MIN_HEARTBEAT_INTERVAL:g} s: less would make live replicates look dead) and "
            f"{MAX_STALE_AFTER:.0f} s (a year), got {value:g}"
        )
    return value


def heartbeat_interval(stale_after: float) -> float:
    """Seconds between two heartbeats: ``HEARTBEATS_PER_WINDOW`` of them per stale window."""
    beat = stale_after / HEARTBEATS_PER_WINDOW
    return min(MAX_HEARTBEAT_INTERVAL, max(MIN_HEARTBEAT_INTERVAL, beat))
