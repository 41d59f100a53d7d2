"""How every long-running command ends on SIGINT, SIGTERM and SIGHUP: the same way.

:func:`interruptible` wraps a command's work. The first of these signals raises
:class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so every ``finally`` runs: a
back end ends its workers and Ray tasks, a file being written is dropped (writes are atomic), and
a run folder stays without a manifest. Then any child process still running is ended, one line
says what was kept and how to resume, and the command exits with 128 + the signal number (130 for
SIGINT, 143 for SIGTERM, 129 for SIGHUP). Further signals while it cleans up are ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import typer
from rich.markup import escape

from .output import err_console

#: the signals a command handles (those this platform has)
SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by the first handled signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """128 + the signal's number, the shell's convention."""
    return 128 + int(signum)


@contextlib.contextmanager
def _handled() -> Iterator[dict]:
    """Handlers raising :class:`Interrupted` for the first signal (later ones ignored), restored after."""
    state: dict[str, Any] = {"signum": None}

    def handler(signum: int, frame: object) -> None:
        if state["signum"] is None:
            state["signum"] = signum
            raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in SIGNALS}
    state["reinstall"] = lambda: [signal.signal(s, handler) for s in SIGNALS]
    _CURRENT.append(state)
    try:
        yield state
    finally:
        _CURRENT.remove(state)
        for s, h in old.items():
            signal.signal(s, h)


_CURRENT: list[dict] = []


def reclaim() -> None:
    """Install this module's handlers again: call it after a library that installs its own
    (``ray.init`` installs a SIGTERM handler that aborts the process)."""
    if _CURRENT and threading.current_thread() is threading.main_thread():
        _CURRENT[-1]["reinstall"]()


def run_main(main: Callable[[], object]) -> None:
    """Run the command line: a signal that comes before a command's own :func:`interruptible`
    (while it parses arguments or loads a scenario) ends it the same way, with nothing written.
    (Typer would turn a ``KeyboardInterrupt`` there into a silent exit 130, whatever the signal.)"""
    import sys

    def handler(signum: int, frame: object) -> None:
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        sys.stderr.write(f"\ninterrupted by {signal.Signals(signum).name}: nothing was written\n")
        raise SystemExit(exit_code(signum))

    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        main()
    finally:                # the command is over (its files written): a late signal must not turn
        for s in SIGNALS:   # its exit into a crash while the interpreter shuts down
            signal.signal(s, signal.SIG_IGN)


@contextlib.contextmanager
def interruptible(kept: str | Callable[[], str], resume: str | None = None) -> Iterator[None]:
    """Run the block; on SIGINT, SIGTERM or SIGHUP end it as the module says. ``kept``: what the
    interrupted command leaves behind (a sentence, or a function giving it at that moment);
    ``resume``: how to resume, for a command that can."""
    if threading.current_thread() is not threading.main_thread():
        yield                          # signal handlers live in the main thread only
        return
    with _handled() as state:
        try:
            yield
        except BaseException as e:
            # the signal the handler saw: a library may turn it into another exception (Ray's
            # ray.wait re-raises a plain KeyboardInterrupt, torch's import an ImportError), so
            # the exception's type is not enough
            signum = state["signum"]
            if signum is None:
                if not isinstance(e, KeyboardInterrupt):
                    raise
                signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
            state["signum"] = signum
            from ..lab.workers import end_children
            end_children()
            what = kept() if callable(kept) else kept
            err_console.print(escape(f"\ninterrupted by {signal.Signals(signum).name}: {what}"
                                     + (f"; {resume}" if resume else "")), highlight=False, soft_wrap=True)
            raise typer.Exit(exit_code(signum)) from None
