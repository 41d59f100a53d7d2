"""``llmqueue reproduce NAME --out DIR``: run one experiment of the registry (:mod:`llmqueue.experiments`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..errors import ExperimentError
from ..experiments import EXPERIMENTS, experiment, experiment_names
from .output import fail
from .output import wide_console as console
from .progress import progress_bar


def reproduce(
    name: Optional[str] = typer.Argument(None, help=f"Experiment: {', '.join(experiment_names())}."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: reproduce-NAME)."),
    fast: bool = typer.Option(False, "--fast", help="Shorter runs and fewer points (a smoke test, not the result)."),
    list_: bool = typer.Option(False, "--list", help="List the experiments and exit."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar (none is drawn when stderr is not a "
                               "terminal either)."),
    force: bool = typer.Option(False, "--force", help="Replace the contents of a non-empty --out."),
) -> None:
    """Reproduce one of the paper's experiments: PNG figures, result.json, and what was found."""
    if list_ or name is None:
        for e in EXPERIMENTS:
            console.print(f"[bold]{e.name:20s}[/] {e.label} [dim]({e.area})[/]", highlight=False)
        if name is None and not list_:
            raise typer.Exit(2)
        return
    try:
        exp = experiment(name)
    except ExperimentError as e:
        fail(str(e))
    out = out or Path(f"reproduce-{name}")
    from ..sim.manifest import prepare_out
    from .options import unfinished
    from .signals import interruptible
    prepare_out(out, force=force)
    t0 = time.monotonic()
    with interruptible(unfinished(out)), progress_bar(f"{name}: runs", quiet=quiet) as progress:
        result = exp.run(out, fast=fast, progress=progress)
    for line in result.get("findings", []):
        console.print(f"- {line}", highlight=False)
    files = [str(Path(out) / f) for f in result.get("figures", [])] + [str(Path(out) / "result.json")]
    console.print(f"wrote {', '.join(files)} in {time.monotonic() - t0:.1f} s", highlight=False)
