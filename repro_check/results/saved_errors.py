"""A saved report's decoding error as one line that names the field.

msgspec says ``Expected `int` >= 0 - at `$.runs[0].trials[...]```: here that becomes
``report.runs[0].trials[3].number: expected an integer from 0 to 1000000000, got -1``, the
field's own description (its ``msgspec.Meta``) quoted, dict keys filled in by walking the plain
decoded values beside the types. Only a refused file pays for this.
"""

from __future__ import annotations

import math
import re
import reprlib
import typing
from typing import Annotated, Any, Literal

import msgspec


class SavedReportError(ValueError):
    """A saved report that does not decode into the types above; the message names the field."""


SHOW = reprlib.Repr()
SHOW.maxstring = 40
SHOW.maxother = 40
SHOW.maxlevel = 2
SHOW.maxlist = SHOW.maxdict = 3

_AT = re.compile(r"^(?P<what>.*?)(?: - at (?P<key>`key` in )?`(?P<path>\$[^`]*)`)?$", re.S)
_GOT = re.compile(r", got `[^`]*`$")
_SEGMENT = re.compile(r"\.([A-Za-z0-9_$]+)|\[(\d+|\.\.\.)\]")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]*)`")
_TYPE_WORDS = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "null": "null",
    "object": "an object",
    "array": "a list",
}


def printable(text: str, limit: int = 200) -> str:
    """A field path or value for a one-line message: control characters escaped, bounded."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _strip(tp: Any) -> tuple[Any, str | None]:
    """A type without ``Annotated``, and the description its metadata gives (if any)."""
    description = None
    while typing.get_origin(tp) is Annotated:
        for extra in tp.__metadata__:
            if isinstance(extra, msgspec.Meta) and extra.description:
                description = extra.description
        tp = tp.__origin__
    return tp, description


def _members(tp: Any, plain: bool = True) -> tuple[Any, ...]:
    """A union's members (``tp`` alone otherwise), ``Annotated`` stripped when ``plain``."""
    tp, _ = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, type(int | None)):
        return tuple(_strip(m)[0] if plain else m for m in typing.get_args(tp))
    return (tp,)


def _child(tp: Any, value: Any, step: str) -> Any:
    """The declared type of ``value[step]`` (a field name or an index), given ``value``'s."""
    for member in _members(tp):
        struct = isinstance(member, type) and issubclass(member, msgspec.Struct)
        if struct and isinstance(value, dict):
            hints = typing.get_type_hints(member, include_extras=True)
            for field in msgspec.structs.fields(member):
                if step in (field.name, field.encode_name):
                    return hints[field.name]
        origin = typing.get_origin(member)
        if origin is dict and isinstance(value, dict):
            return typing.get_args(member)[1]
        if origin is list and isinstance(value, list):
            return typing.get_args(member)[0]
    return Any


def _bad_key(mapping: dict[str, Any], value_type: Any) -> str | None:
    """The first key of ``mapping`` whose value is not a ``value_type`` (msgspec names none)."""
    for key, value in mapping.items():
        try:
            msgspec.convert(value, value_type, strict=False)
        except msgspec.ValidationError:
            return str(key)
    return None


def _locate(path: str, data: Any, root: Any) -> tuple[str, Any, Any, bool]:
    """msgspec's ``$.runs[0].params[...]`` walked over the plain decoded ``data``: the path with
    dict keys filled in (``report.runs[0].params.x``), the value there, its declared type and
    whether the value was found."""
    shown, value, tp = "report", data, root
    for name, index in _SEGMENT.findall(path[1:]):
        if index == "...":
            key = _bad_key(value, _child(tp, value, "")) if isinstance(value, dict) else None
            if key is None:
                return shown + "[...]", None, Any, False
            name = key
        step = name or index
        tp = _child(tp, value, step if name else "")
        try:
            value = value[step] if name else value[int(index)]
        except (KeyError, IndexError, TypeError, ValueError):
            return shown + (f".{step}" if name else f"[{index}]"), None, Any, False
        shown += f".{step}" if name else f"[{index}]"
    return shown, value, tp, True


def _expected(what: str, tp: Any) -> str:
    """What the field should hold: its description, else msgspec's words made plain."""
    _, description = _strip(tp)
    for member in _members(tp, plain=False):
        if description is None:
            description = _strip(member)[1]
    if description:
        return description
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, msgspec.Struct):
            return f"a {member.__name__.lower()} object"
        if typing.get_origin(member) is Literal:
            return " or ".join(map(repr, typing.get_args(member)))
    found = re.search(r"Expected `([^`]*)`(.*)", what)
    if found:
        words = [_TYPE_WORDS.get(word.strip(), word.strip()) for word in found[1].split("|")]
        return " or ".join(words) + found[2]
    return what[:1].lower() + what[1:]


def _plain(raw: bytes | bytearray | str) -> Any:
    """``raw`` as plain values (to name where it is wrong); a number msgspec cannot hold (1e400,
    an int of 20 digits) is read by ``json`` instead (as infinity, a long int)."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _out_of_range(value: Any) -> str | None:
    """Where under ``value`` the first number too large for msgspec is (``.tolerance.atol``)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, at = stack.pop(0)
        if isinstance(item, float) and item in (math.inf, -math.inf):
            return at
        if isinstance(item, int) and not -(2**63) <= item < 2**64:
            return at
        if isinstance(item, dict):
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
    return None


def explain(error: msgspec.ValidationError, raw: bytes | bytearray | str, root: Any) -> str:
    """``error`` (decoding ``raw`` as ``root``) as ``report.runs[0].seed: expected ..., got 3``."""
    text = str(error)
    match = _AT.match(text)
    what, path = (match["what"], match["path"] or "$") if match else (text, "$")
    what = _GOT.sub("", what)
    data = _plain(raw)
    where, value, tp, found = _locate(path, data, root)
    missing = _MISSING.match(what)
    if missing:
        return f"{printable(where)}.{printable(missing['field'])}: missing"
    if match and match["key"]:
        return f"{printable(where)}: a key that is not {_expected(what, Any)}"
    if what.endswith("out of range"):
        deeper = _out_of_range(value) if found else None
        return f"{printable(where + (deeper or ''))}: a number out of range"
    got = f", got {printable(SHOW.repr(value))}" if found else ""
    return f"{printable(where)}: expected {_expected(what, tp)}{got}"
