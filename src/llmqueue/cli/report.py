"""``llmqueue report DIR``: turn a sweep, reproduce, run or plan folder into one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ReportError
from .output import fail
from .output import wide_console as console


def report(
    folder: Path = typer.Argument(..., help="A sweep folder, a reproduce folder, a run folder (simulate --out) "
                                "or a plan folder (plan --out)."),
    out: Optional[Path] = typer.Option(None, "--out", help="The HTML file to write (default: FOLDER/report.html)."),
) -> None:
    """One self-contained HTML page: figures embedded, tables, the scenario, verdicts in plain words."""
    from ..lab.report import build_report  # pandas and matplotlib: only when a report is built

    try:
        path = build_report(folder, out)
    except (ReportError, OSError) as e:
        fail(str(e))
        return
    console.print(f"wrote {path}", highlight=False)
