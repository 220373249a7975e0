"""Progress on stderr: one bar per replicate, labelled with its condition or experiment, queued
replicates shown as such, and an overall bar (trials done / planned, with an ETA)."""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from repro_check.execution.runner import Progress as RunnerProgress
from repro_check.render.console import make_console

QUEUED = "queued"
RUNNING = "running"


class Bars:
    """What the bars show, kept apart from rich so that it can be tested as plain data: each
    job's label, trials done, total and status, keyed by (group, job index)."""

    def __init__(self) -> None:
        self.label: dict[tuple[str, int], str] = {}
        self.done: dict[tuple[str, int], int] = {}
        self.total: dict[tuple[str, int], int] = {}
        self.status: dict[tuple[str, int], str] = {}
        self._per_group: dict[str, int] = {}

    def update(self, event: RunnerProgress) -> tuple[str, int]:
        key = (event.group, event.job)
        if key not in self.label:
            ordinal = self._per_group.get(event.group, 0)  # runs numbered within their group,
            self._per_group[event.group] = ordinal + 1  # as the reports number them
            self.label[key] = f"{event.group} run {ordinal}" if event.group else f"run {event.job}"
        self.done[key] = event.done
        self.total[key] = event.total
        if event.queued:
            self.status[key] = QUEUED
        else:
            self.status[key] = event.status or RUNNING
        return key

    @property
    def trials_done(self) -> int:
        return sum(self.done.values())

    @property
    def trials_planned(self) -> int:
        """Trials planned in all; 0 (unknown) while a job still to run has no known total
        and no job of its group has one to go by (a script announces its plan as it goes;
        its replicates plan alike). A job that ended without a total (cancelled before it
        started, taken elsewhere) no longer counts."""
        largest: dict[str, int] = {}
        for (group, _), total in self.total.items():
            largest[group] = max(largest.get(group, 0), total)
        planned = 0
        for key, total in self.total.items():
            if total == 0 and self.status[key] in (QUEUED, RUNNING):
                total = largest[key[0]]
                if total == 0:
                    return 0
            planned += total
        return planned

    def shown(self, key: tuple[str, int]) -> bool:
        """A job's bar shows unless it ended with nothing to count (cancelled before it
        started, or taken elsewhere); one whose total is not known yet shows its count."""
        return self.total[key] > 0 or self.done[key] > 0 or self.status[key] in (QUEUED, RUNNING)

    @property
    def queued(self) -> int:
        return sum(status == QUEUED for status in self.status.values())


class ReplicateProgress:
    def __init__(self) -> None:
        self.bars = Bars()
        self._rich = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=make_console(stderr=True),
            transient=True,
        )
        self._overall = self._rich.add_task("all trials", total=None, status="")
        self._tasks: dict[tuple[str, int], TaskID] = {}

    def update(self, event: RunnerProgress) -> None:
        key = self.bars.update(event)
        status = self.bars.status[key]
        if key not in self._tasks:
            self._tasks[key] = self._rich.add_task(
                self.bars.label[key], total=event.total or None, status=status
            )
        self._rich.update(
            self._tasks[key],
            completed=event.done,
            total=event.total or None,
            status=status,
            visible=self.bars.shown(key),
        )
        queued = self.bars.queued
        self._rich.update(
            self._overall,
            completed=self.bars.trials_done,
            total=self.bars.trials_planned or None,
            status=f"{queued} queued" if queued else "",
        )

    def __enter__(self) -> ReplicateProgress:
        self._rich.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._rich.__exit__(kind, value, tb)
