"""Progress bars for the long commands (rich), drawn only for a person at a terminal.

The library takes an optional ``progress`` callback, ``progress(done, total)`` with counts of
finished units (simulation runs, timed iterations, points), and knows nothing of terminals. The
command line passes the callback of :func:`progress_bar`, which draws a rich bar on stderr, or
``None`` when nothing must be drawn: with ``--quiet``, or when stderr is not a terminal (a pipe,
a file, a test), so that piped output and test output stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: the callback the library takes: ``progress(done, total)``
ProgressFn = Callable[[int, int], None]


def wanted(quiet: bool = False) -> bool:
    """Whether to draw a bar: not ``quiet``, and stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, *, quiet: bool = False, enabled: bool | None = None) -> Iterator[ProgressFn | None]:
    """``with progress_bar("runs") as progress: library_call(..., progress=progress)``.

    Yields the callback (``None`` when no bar is drawn: ``quiet``, or stderr not a terminal;
    ``enabled`` overrides that test). The bar shows done / total, elapsed time and an ETA.
    """
    if not (wanted(quiet) if enabled is None else enabled):
        yield None
        return
    from ..lab.progress import rich_bar
    bar = rich_bar(transient=True)
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
