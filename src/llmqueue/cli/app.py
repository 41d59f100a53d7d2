"""The ``llmqueue`` app: every command registered on one Typer app, and the one place where a
library error becomes an error line.

Building the app imports no heavy library (pandas, scipy, networkx, hypothesis, matplotlib,
pyarrow, torch): each command imports what it runs inside its function, so ``llmqueue --help``
starts fast.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from ..errors import LLMQueueError
from . import capacity, catalog, lab, memory, network, plan, real, simulate, traces
from .output import fail

#: what a command may raise for a user's mistake: the library's errors, a file that cannot be read
#: or written, the ValueErrors the library still raises for bad arguments, an optional dependency
#: that is not installed
USER_ERRORS = (LLMQueueError, OSError, ValueError, ModuleNotFoundError)


class FailurePrintingGroup(TyperGroup):
    """Runs a command; any of :data:`USER_ERRORS` becomes one ``error:`` line and exit status 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            fail(str(e))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list with each command's whole first sentence, wrapped (click cuts it with '...')."""
        rows = [(name, cmd.get_short_help_str(limit=10_000)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _version(value: bool) -> None:
    if value:
        from .. import __version__
        typer.echo(f"llmqueue {__version__}")
        raise typer.Exit()


#: plain click help (rich_markup_mode=None): it wraps long option names and choices at any width, where
#: the rich panels cut them with an ellipsis at 80 columns
app = typer.Typer(cls=FailurePrintingGroup, add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Queueing theory of LLM serving: simulate batch schedulers and compute their capacity.")


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print the version and exit.")) -> None:
    """Queueing theory of LLM serving: simulate batch schedulers and compute their capacity."""


app.command("simulate")(simulate.simulate)
app.command("capacity")(capacity.capacity)
app.command("check-policy")(catalog.check_policy)
app.command("scenarios")(catalog.scenarios)
lab.register(app)
app.command("fluid")(network.fluid)
app.command("serve-bench")(real.serve_bench)
app.command("profile")(real.profile)
app.command("compare")(real.compare)
app.command("kv-capacity")(memory.kv_capacity)
app.command("trace-stats")(traces.trace_stats)
app.command("plan")(plan.plan)


def main() -> None:
    """The ``llmqueue`` console script (also ``python -m llmqueue``)."""
    from .signals import run_main
    run_main(lambda: app(prog_name="llmqueue"))
