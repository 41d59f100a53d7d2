"""``llmqueue reproduce NAME --out DIR``: run one of the paper's experiments."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer


def reproduce(
    name: Optional[str] = typer.Argument(None, help="Experiment: fig8, stability-contrast, theorem2, vertex-c, "
                                         "token-budget (and the network experiments when installed)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: reproduce-NAME)."),
    fast: bool = typer.Option(False, "--fast", help="Shorter runs and fewer points (a smoke test, not the result)."),
    list_: bool = typer.Option(False, "--list", help="List the experiments and exit."),
) -> None:
    """Reproduce one of the paper's experiments: PNG figures, result.json, and what was found."""
    from ..commands import _fail, console
    from . import EXPERIMENTS, names, run_experiment

    if list_ or name is None:
        for n in names():
            desc = EXPERIMENTS[n][1] if n in EXPERIMENTS else "network experiment (llmqueue.network)"
            console.print(f"[bold]{n:20s}[/] {desc}", highlight=False)
        if name is None and not list_:
            raise typer.Exit(2)
        return
    if name not in names():
        _fail(f"unknown experiment {name!r}; choose one of {', '.join(names())}")
    out = out or Path(f"reproduce-{name}")
    t0 = time.monotonic()
    result = run_experiment(name, out, fast=fast)
    for line in result.get("findings", []):
        console.print(f"- {line}", highlight=False)
    files = [str(Path(out) / f) for f in result.get("figures", [])] + [str(Path(out) / "result.json")]
    console.print(f"wrote {', '.join(files)} in {time.monotonic() - t0:.1f} s", highlight=False)
