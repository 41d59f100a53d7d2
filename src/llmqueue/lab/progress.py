"""A progress bar with an ETA for sweeps (rich), or nothing when quiet.

rich is imported only when a bar is shown, so that the sweep library (which takes a
:class:`SweepProgress`) does not load the terminal toolkit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID


def rich_bar(console: Console | None = None, *, transient: bool = False):
    """The one progress bar of the command line: description, bar, done / total, elapsed time
    and ETA, on ``console`` (default: stderr)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=console or Console(stderr=True), transient=transient)


class SweepProgress:
    """Counts finished points against the points known so far (bisections add theirs as they go)."""

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.resumed = 0
        self._progress = None
        self._task: TaskID | None = None
        if enabled:
            self._progress = rich_bar(console)

    def __enter__(self) -> SweepProgress:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def add(self, n: int, resumed: int = 0) -> None:
        """``n`` more points are needed, of which ``resumed`` were finished by an earlier run.

        Resumed points are not counted in the bar, so the ETA reflects only the work left.
        """
        self.resumed += resumed
        if self._progress is not None:
            if self._task is None:
                self._task = self._progress.add_task("points", total=0)
            task = self._progress.tasks[0]
            desc = "points" + (f" ({self.resumed} resumed)" if self.resumed else "")
            self._progress.update(self._task, total=(task.total or 0) + n - resumed, description=desc)

    def advance(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, 1)
