"""A rich progress bar per replicate (trials done / total), drawn on stderr."""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from repro_check.render.console import make_console
from repro_check.runner import Progress as RunnerProgress


class ReplicateProgress:
    def __init__(self) -> None:
        self._bars = Progress(
            TextColumn("run {task.fields[run]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=make_console(stderr=True),
            transient=True,
        )
        self._tasks: dict[int, TaskID] = {}

    def update(self, event: RunnerProgress) -> None:
        if event.job not in self._tasks:
            self._tasks[event.job] = self._bars.add_task(
                "", total=event.total, run=event.job, status=""
            )
        self._bars.update(
            self._tasks[event.job],
            completed=event.done,
            total=event.total,
            status=event.status or "",
        )

    def __enter__(self) -> ReplicateProgress:
        self._bars.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bars.__exit__(kind, value, tb)
