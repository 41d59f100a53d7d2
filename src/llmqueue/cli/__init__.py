"""The ``llmqueue`` command line: thin commands over the library's public API.

``app`` is the Typer app (tests drive it with ``typer.testing.CliRunner``); ``main`` is the
console script. One module per group of commands (:mod:`.simulate`, :mod:`.capacity`,
:mod:`.catalog`, :mod:`.network`, :mod:`.real`, :mod:`.memory`); the lab's commands register
themselves; :mod:`.output` holds the one failure printer.
"""

from .app import app, main

__all__ = ["app", "main"]
