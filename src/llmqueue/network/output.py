"""Write a network run to a directory: jobs.csv, visits.csv, iterations_<engine>.csv, backlog.csv,
in_engine.csv, buffers.csv and summary.json (plus whatever ``extra`` the caller adds)."""

from __future__ import annotations

import re
from pathlib import Path

from ..sim.output import jsonable, write_summary
from ..sim.summary import NetworkSummary
from .result import NetworkResult

__all__ = ["jsonable", "write_network_run"]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_network_run(res: NetworkResult, out: Path, extra: dict | None = None) -> NetworkSummary:
    """Write the tables and the summary; returns the summary (``extra`` in its ``extra``)."""
    out.mkdir(parents=True, exist_ok=True)
    res.jobs.to_csv(out / "jobs.csv", index=False, na_rep="")
    res.visits.to_csv(out / "visits.csv", index=False, na_rep="")
    for name, it in res.iterations.items():
        it.to_csv(out / f"iterations_{_safe(name)}.csv", index=False)
    res.backlog.to_csv(out / "backlog.csv", index=False)
    res.in_engine.to_csv(out / "in_engine.csv", index=False)
    res.buffers.to_csv(out / "buffers.csv", index=False)
    summary = res.summary().with_extra(extra)
    write_summary(summary, out)
    return summary
