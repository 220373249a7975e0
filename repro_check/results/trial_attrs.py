"""What the comparison reads from a trial's attributes, and how it fingerprints them.

Which of Optuna's system attributes are timing or identity (``NOT_COMPARED``), a trial's
constraints as Optuna reads them, and the exact skeleton of a free-form value whose floats a
tolerance may loosen (``skeleton``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

from repro_check.json_values import EMPTY, decode_float


def canonical_float(x: float) -> float | str:
    """Exact identity of a float for keys: NaN equals NaN, -0.0 differs from 0.0."""
    if x != x:
        return "nan"
    if x == 0.0 and math.copysign(1.0, x) < 0:
        return "-0.0"
    return x


NOT_COMPARED = (
    "datetime_start",
    "datetime_complete",
    "duration",
    "trial_id",
    "system_attrs['repro_check_*']",
    "system_attrs['artifacts:*']",
    "system_attrs['lightgbm_tuner:elapsed_secs']",
    "system_attrs['lightgbm_tuner:average_iteration_time']",
)
"""What Optuna (or repro-check) records about a trial and the comparison leaves out: timing
and identity, different in every process by nature. ``datetime_start``/``datetime_complete``
and ``duration`` (kept as ``duration_s``, shown, never compared) say when the trial ran;
``trial_id`` is the storage's row id (replicates sharing one storage get different ones; the
trial ``number`` is compared); ``repro_check_*`` system attributes are repro-check's own
bookkeeping in a shared storage (the trial's number and error in its script's study);
``artifacts:<uuid4>`` are the ids ``optuna.artifacts.upload_artifact`` draws for a trial's
files, and optuna-integration's LightGBM tuner writes its wall-clock timings. A FAIL
trial's error message is compared by its kind only (``fail_kind``): its text holds addresses
and timings.

Everything else a trial holds is compared: ``number``, ``state``, ``params`` exactly (what the
sampler or the user chose, whatever ``--atol``/``--rtol``), their ``distributions``,
``values``, ``intermediate_values``, ``user_attrs`` and ``system_attrs`` (constraints,
``fixed_params`` of an enqueued trial, the sampler's own notes). Tolerances loosen only floats
the objective computed: values, intermediate values, constraints and the floats inside user
and system attributes (``fixed_params`` aside: params, compared exactly).
"""

OWN_ATTR_PREFIX = "repro_check_"
"""System attributes repro-check itself writes into a shared storage's trials: not the user's
study, never recorded (see ``NOT_COMPARED``)."""

_UNCOMPARED_PREFIXES = (OWN_ATTR_PREFIX, "artifacts:")
_UNCOMPARED_KEYS = frozenset(
    {"lightgbm_tuner:elapsed_secs", "lightgbm_tuner:average_iteration_time"}
)


def recorded_system_attr(key: str) -> bool:
    """Whether a trial's system attribute is recorded and compared: all but the timing and
    identity ones ``NOT_COMPARED`` names."""
    return not key.startswith(_UNCOMPARED_PREFIXES) and key not in _UNCOMPARED_KEYS


CONSTRAINTS_KEY = "constraints"
"""Optuna's system attribute for constraints: a list (a sampler's ``constraints_func``) and,
since Optuna 5, one ``constraints:<name>`` attribute per ``trial.set_constraint``."""
_CONSTRAINT_PREFIX = CONSTRAINTS_KEY + ":"
FIXED_PARAMS_KEY = "fixed_params"
"""Optuna's system attribute holding an enqueued trial's params (``Study.enqueue_trial``)."""


def is_constraint_key(key: str) -> bool:
    return key == CONSTRAINTS_KEY or key.startswith(_CONSTRAINT_PREFIX)


def constraints_of(system_attrs: Mapping[str, Any] | None) -> Mapping[str, float]:
    """A trial's constraints by name as Optuna reads them (``_get_constraints_from_system_attrs``:
    the list as "0", "1", ..., then each ``constraints:<name>``); values that are not numbers
    (a hand-edited report) are left out here and still compared as attributes."""
    if not system_attrs:
        return EMPTY
    found: dict[str, float] = {}
    listed = system_attrs.get(CONSTRAINTS_KEY)
    if isinstance(listed, list | tuple):
        for i, value in enumerate(listed):
            with contextlib.suppress(ValueError):
                found[str(i)] = decode_float(value)
    for key, value in system_attrs.items():
        if key.startswith(_CONSTRAINT_PREFIX):
            with contextlib.suppress(ValueError):
                found[key[len(_CONSTRAINT_PREFIX) :]] = decode_float(value)
    return found or EMPTY


def skeleton(value: Any, floats: list[float] | None) -> Any:
    """A JSON-safe value with sorted keys, for an exact ``repr`` fingerprint. With ``floats``,
    each float moves there (in order) and ``...`` takes its place: the tolerance check compares
    them apart (JSON-safe data never holds ``...``, and dicts and lists ``repr`` apart)."""
    kind = type(value)
    if kind is float:
        if floats is None:
            return ("float", canonical_float(value))
        floats.append(value)
        return ...
    if kind is dict:
        return {k: skeleton(value[k], floats) for k in sorted(value)}
    if kind is list:
        return [skeleton(v, floats) for v in value]
    return value
