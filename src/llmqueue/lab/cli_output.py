"""What the lab's command modules share for output: the consoles and the one-line failure.

Only the command modules (:mod:`.commands`, :mod:`.report_command`, :mod:`.reproduce_command`)
import this; the lab library never does (it raises :class:`~llmqueue.errors.LLMQueueError`).
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# wide enough for the tables when the output is a file or a pipe (rich would assume 80 columns)
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)


def fail(msg: str) -> NoReturn:
    """Print ``error: msg`` (markup-escaped) on stderr and exit with status 2."""
    err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
