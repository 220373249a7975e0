"""JSON-safe values: how what a trial holds becomes strict JSON, and back.

JSON has no NaN or infinity, so non-finite floats travel as the strings "NaN", "Infinity" and
"-Infinity"; every other float is written with ``repr`` precision and so round-trips bit for bit
(``-0.0`` included). Arrays and tensors become their numbers, other objects a stable name, and
what a saved report holds is bounded (``results.bounds``). The worker, the records and the
storage all write values through here.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from collections.abc import Mapping
from types import MappingProxyType, ModuleType
from typing import Any

from repro_check.bounds import MAX_DEPTH, MAX_TEXT

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_float(value: Any) -> float:
    if isinstance(value, str):
        if value not in _NONFINITE:
            raise ValueError(f"not a number: {value!r}")
        return _NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def optional_float(value: Any) -> float | None:
    return None if value is None else decode_float(value)


def to_json_safe(value: Any) -> Any:
    """Recursively make ``value`` strict-JSON safe (non-finite floats become strings). Arrays
    and tensors become their numbers (``array_data``), sets a sorted list, other objects a
    stable name: never a printed form that rounds or elides what differs."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, set | frozenset):  # iteration order follows the hash seed
        return sorted((to_json_safe(v) for v in value), key=lambda v: (type(v).__name__, repr(v)))
    data = array_data(value)
    if data is not None and type(data) is not type(value):  # longdouble.item() is itself
        return to_json_safe(data)
    return stable_name(value)


ARRAY_ITEMS = 10_000
"""An array (or tensor) of at most this many items is recorded item by item (a tolerance
loosens its floats); a larger one by dtype, shape and a hash of its bytes (exact)."""

_ARRAY_LIBRARIES = frozenset({"numpy", "torch", "pandas", "jax", "jaxlib", "cupy"})


def array_data(value: Any) -> Any:
    """The numbers of a NumPy array or scalar, a torch tensor or a pandas object (None for
    anything else, or what cannot be read: it is then named by ``stable_name``): their
    ``repr`` shows 4-8 digits and elides long arrays, so two that differ would print alike. A
    pandas object keeps its labels (index, columns) beside its values. Nothing is imported for
    it: a value of those types means its library is loaded already."""
    library = type(value).__module__.split(".")[0]
    if library not in _ARRAY_LIBRARIES:
        return None
    try:
        if library == "pandas":
            return _pandas_data(value)
        return _numbers(value)
    except Exception:  # a sparse, meta or quantized tensor, an exotic dtype: named instead
        return None


def _numbers(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, on the CPU
        value = value.detach().cpu()
        wide = str(value.dtype) == "torch.bfloat16"  # NumPy has no bfloat16
        value = (value.double() if wide else value).numpy()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        return value.item()
    if np is not None and isinstance(value, np.ndarray):
        if np.ma.isMaskedArray(value):
            value = {"data": value.filled(0), "mask": np.ma.getmaskarray(value)}
            return {key: _numbers(part) for key, part in value.items()}
        if value.size <= ARRAY_ITEMS:
            return value.tolist()  # objects in it are made JSON-safe by the caller
        if value.dtype.hasobject:
            raw = repr(to_json_safe(value.tolist())).encode()
        else:
            raw = np.ascontiguousarray(value).tobytes()
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        return {"array": {"dtype": str(value.dtype), "shape": list(value.shape), "blake2b": digest}}
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else None


def _pandas_data(value: Any) -> Any:
    """A Series, DataFrame, Index or Categorical: its kind, labels (in order) and values."""
    data: dict[str, Any] = {"pandas": type(value).__name__}
    for part in ("index", "columns"):
        labels = getattr(value, part, None)
        if labels is not None and hasattr(labels, "to_numpy"):
            data[part] = _numbers(labels.to_numpy())
    data["values"] = _numbers(value.to_numpy())
    return data


def stable_name(value: Any) -> str:
    """A value JSON cannot hold, named the same in every process: a function, class, method or
    module by its module-qualified name (``mypkg.nets.relu``; a lambda or local function also
    by its line), anything else by its repr less memory addresses (``<mypkg.Loss object>``).
    Never an address: a categorical choice ``suggest_categorical("act", [relu, tanh])`` must
    read the same in every run."""
    name = getattr(value, "__qualname__", None)
    if isinstance(name, str) and not isinstance(value, str):
        module = getattr(value, "__module__", None)
        named = f"{module}.{name}" if isinstance(module, str) and module else name
        code = getattr(value, "__code__", None)
        if "<" in name and code is not None:  # <lambda>, <locals>: one name, many functions
            named += f"@{code.co_firstlineno}"
        return named
    if isinstance(value, ModuleType):
        return value.__name__
    return ADDRESS.sub("", repr(value))


FLOAT_TAG = "$float"
"""Non-finite float *params* travel as {"$float": "NaN"}: a bare "NaN" could be a string choice."""


def encode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            encoded[str(key)] = {FLOAT_TAG: encode_float(value)}
        else:
            encoded[str(key)] = to_json_safe(value)
    return encoded


def decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and set(value) == {FLOAT_TAG}:
            decoded[str(key)] = decode_float(value[FLOAT_TAG])
        else:
            decoded[str(key)] = value
    return decoded


ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
"""``<Loss object at 0x7f31...>``: a memory address, different in every process."""

EMPTY: Mapping[Any, Any] = MappingProxyType({})
"""Shared by every record without intermediate values or user attributes (saves memory)."""


def distribution_json(distribution: Any) -> dict[str, Any]:
    """An Optuna distribution as Optuna writes it (``distribution_to_json``: its class name and
    attributes), JSON-safe: categorical choices that are objects by their stable names."""
    asdict = getattr(distribution, "_asdict", None)
    attributes = asdict() if callable(asdict) else dict(getattr(distribution, "__dict__", {}))
    return {"name": type(distribution).__name__, "attributes": to_json_safe(attributes)}


def bounded(value: Any, depth: int = 0) -> Any:
    """A JSON-safe ``value`` as a saved report may hold it (``results.bounds``), still compared
    whole: a string over ``MAX_TEXT`` characters keeps its start and a hash of the whole, one
    with lone surrogates is escaped, containers nested deeper than ``MAX_DEPTH`` become their
    repr (so bounded too). The worker bounds what it streams with it."""
    if isinstance(value, str):
        if not value.isascii():
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(value) <= MAX_TEXT:
            return value
        digest = hashlib.blake2b(value.encode(), digest_size=16).hexdigest()
        tail = f"... ({len(value)} characters, blake2b {digest})"
        return value[: MAX_TEXT - len(tail)] + tail
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return bounded(repr(value), depth)
    if isinstance(value, dict):
        return {bounded(k, depth): bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [bounded(v, depth + 1) for v in value]
    return value


def saved_attrs(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    """Attributes (a trial's system ones, a study's user ones) as a report holds them:
    string keys, JSON-safe values, bounded (``bounded``) yet compared whole."""
    return {bounded(str(k)): bounded(to_json_safe(v), 1) for k, v in attrs.items()}
