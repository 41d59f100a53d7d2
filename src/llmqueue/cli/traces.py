"""``llmqueue trace-stats``: what a trace holds (Azure CSV, our CSV, Mooncake JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def trace_stats(
    trace: Path = typer.Argument(..., help="Trace file: our CSV, the Azure CSV, or Mooncake JSON lines."),
    trace_format: str = typer.Option("auto", "--trace-format",
                                     help="auto (from the name and content), csv or mooncake."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Requests, duration, rate and length percentiles of a trace; for a trace with block hashes
    also the block size, the distinct blocks and the reuse ceiling (the hit rate of an unbounded
    prefix cache: the share of prompt blocks whose hash appeared in an earlier request)."""
    from ..workload.trace_stats import trace_stats as stats

    s = stats(trace, trace_format)
    if as_json:
        typer.echo(json.dumps(s.to_dict(), indent=2))
        return
    typer.echo(f"{trace}")
    for line in s.lines():
        typer.echo(f"  {line}")
