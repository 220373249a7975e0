"""What script mode records of each study the script made (``StudyEntry``), and the
exceptions that end a script run early. Shared by the capture and its Optuna hooks."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from repro_check.json_values import saved_attrs
from repro_check.results.records import SamplerInfo, StudyRecord


class CapReached(BaseException):
    """An ask/tell loop asked for more trials than ``--trials``: the script stops there (a
    BaseException, so the script's own ``except Exception`` cannot swallow it)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class ScriptExit(Exception):
    """The script ended in a way that makes the run a crash (message: one line why)."""


@dataclasses.dataclass
class StudyEntry:
    """One study the script created or loaded, as the hooks saw it."""

    study: Any
    at: str | None
    sampler: SamplerInfo
    pruner: str | None
    initial: int
    """Trials it held when the script opened it (a resumed storage)."""
    limit: int | None = None
    """The most trials this run may ask for it (``--trials``, less what the first process of a
    resume check already added to it); None: no cap."""
    n_trials: int | None = None
    timeout: float | None = None
    n_jobs: int = 1
    capped: bool = False
    asked: int = 0
    """Trials this run asked for (through ``optimize`` or ``ask``)."""
    refused: int = 0
    """Asks the cap refused (more than one: the script swallowed ``CapReached``)."""
    active: int = 0
    """``optimize`` calls on this study running now (several: the script's threads race)."""
    pending: tuple[str, ...] = ()
    """Its unfinished trials when the script ended (``StudyRegistry.emit`` fills it in)."""
    errors: dict[int, str] = dataclasses.field(default_factory=dict)
    returned: dict[int, Any] = dataclasses.field(default_factory=dict)
    index: int = 0
    """Its place in creation order: the ``study`` its events carry."""
    streamed: set[int] = dataclasses.field(default_factory=set)
    """Numbers of its trials already streamed (live as told, or at the script's end)."""

    @property
    def planned(self) -> int | None:
        """Trials this run is expected to add, for progress: what its ``optimize`` calls
        asked for, cut to its cap (None: unknown, as for an ask/tell loop)."""
        if self.n_trials is None:
            return None
        return self.n_trials if self.limit is None else min(self.n_trials, self.limit)

    def record(self) -> StudyRecord:
        study = self.study
        name = str(study.study_name)
        return StudyRecord(
            name="" if AUTO_NAME.fullmatch(name) else name,
            directions=tuple(d.name.lower() for d in study.directions),
            sampler=self.sampler,
            pruner=self.pruner,
            at=self.at,
            n_trials=self.n_trials,
            timeout=self.timeout,
            n_jobs=self.n_jobs,
            capped=self.capped,
            loaded=self.initial > 0,
            pending=self.pending,
            user_attrs=study_attrs(study),
        )


def study_attrs(study: Any) -> Mapping[str, Any]:
    """The study's user attributes, JSON-safe and bounded as a trial's are (a storage that
    cannot be read gives none here: its trials' own read reports that)."""
    try:
        attrs = dict(study.user_attrs)
    except Exception:
        return {}
    return saved_attrs(attrs)


AUTO_NAME = re.compile(r"no-name-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""The name Optuna makes up (from a random UUID) for a study the script did not name: every
run gets another, so it is recorded as "" (unnamed) and not compared."""


def shown_study(name: str) -> str:
    """How a message names a study: ``study 'x'``, or ``an unnamed study``."""
    return "an unnamed study" if AUTO_NAME.fullmatch(name) else f"study {name!r}"
