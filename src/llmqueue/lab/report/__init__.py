"""``llmqueue report DIR``: one self-contained HTML page for a sweep, a reproduction, a run or a plan."""

from __future__ import annotations

from pathlib import Path

from ...errors import ReportError
from ...sim.manifest import verify, write_text
from . import html

KINDS = {
    "sweep": ("sweep.json", "summary.parquet"),
    "reproduce": ("result.json",),
    "run": ("summary.json", ("requests.parquet", "requests.csv"), ("iterations.parquet", "iterations.csv")),
    "plan": ("plan.json", "plan_results.json"),
}


def kind_of(folder: Path) -> str:
    for kind, files in KINDS.items():
        if all(any((folder / g).exists() for g in ((f,) if isinstance(f, str) else f)) for f in files):
            return kind
    raise ReportError(f"{folder} is not a sweep folder (sweep.json, summary.parquet), a reproduce folder "
                      f"(result.json) or a run folder from `llmqueue simulate --out` (summary.json, requests and "
                      f"iterations tables, .parquet or .csv) or a plan folder from `llmqueue plan --out` (plan.json, "
                      f"plan_results.json)")


def build_report(folder: Path, out: Path | None = None) -> Path:
    """Write the page (default ``folder/report.html``) and return its path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such folder")
    kind = kind_of(folder)
    verify(folder)     # a finished run (its manifest), with every file as the manifest lists it
    if kind == "sweep":
        from .sweep_page import build
    elif kind == "reproduce":
        from .reproduce_page import build
    elif kind == "plan":
        from .plan_page import build
    else:
        from .run_page import build
    title, body = build(folder)
    out = Path(out) if out is not None else folder / "report.html"
    write_text(out, html.page(title, body))
    return out
