"""What kind of target a check runs, told from its text alone (nothing is imported or read):
a script run whole (``train.py``, ``-m pkg.mod``, a notebook ``tune.ipynb``) or an objective
(``pkg.mod:attr``)."""

from __future__ import annotations

from pathlib import Path

OBJECTIVE = "objective"
"""``pkg.mod:attr``, ``file.py:attr`` or a bare ``pkg.mod``: a function, run in our study."""
SCRIPT = "script"
"""A bare ``file.py``: the script itself, as ``python file.py ARGS`` runs it."""
MODULE = "module"
"""``-m pkg.mod``: the module as a script, as ``python -m pkg.mod ARGS`` runs it."""
NOTEBOOK = "notebook"
"""A bare ``file.ipynb``: its code cells run top to bottom, as a fresh kernel runs them (script
mode's capture, comparison and reports)."""
MODULE_PREFIX = "-m "


def kind(spec: str) -> str:
    """``script`` for a bare ``.py`` path, ``notebook`` for a bare ``.ipynb`` one, ``module``
    for ``-m pkg.mod``, else ``objective``. Only the text decides: nothing is imported or read."""
    if spec.startswith(MODULE_PREFIX):
        return MODULE
    location, sep, attr = spec.rpartition(":")
    if sep and location and attr.isidentifier():
        return OBJECTIVE
    if spec.endswith(".ipynb"):
        return NOTEBOOK
    return SCRIPT if spec.endswith(".py") else OBJECTIVE


def is_script(spec: str) -> bool:
    """The target is a script (a file, a notebook or an ``-m`` module run whole), not an
    objective."""
    return kind(spec) != OBJECTIVE


def script_name(spec: str) -> str:
    """How a script target is named in messages: ``train.py``, ``tune.ipynb`` or ``-m pkg.mod``."""
    return spec if kind(spec) == MODULE else Path(spec).name
