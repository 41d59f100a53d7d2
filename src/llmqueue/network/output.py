"""Write a network run to a directory: jobs.csv, visits.csv, iterations_<engine>.csv, backlog.csv,
in_engine.csv, buffers.csv and summary.json (plus whatever ``extra`` the caller adds)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..sim.manifest import atomic_path, seal, unseal
from ..sim.output import jsonable, write_summary
from ..sim.summary import NetworkSummary
from .result import NetworkResult

__all__ = ["jsonable", "write_network_run"]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_network_run(res: NetworkResult, out: Path, extra: dict | None = None) -> NetworkSummary:
    """Write the tables and the summary; returns the summary (``extra`` in its ``extra``)."""
    out.mkdir(parents=True, exist_ok=True)
    unseal(out)
    tables: dict[str, tuple[Any, str | None]] = {"jobs.csv": (res.jobs, ""), "visits.csv": (res.visits, "")}
    tables.update({f"iterations_{_safe(name)}.csv": (it, None) for name, it in res.iterations.items()})
    tables.update({"backlog.csv": (res.backlog, None), "in_engine.csv": (res.in_engine, None),
                   "buffers.csv": (res.buffers, None)})
    for fname, (df, na_rep) in tables.items():
        with atomic_path(out / fname) as tmp:
            df.to_csv(tmp, index=False, **({} if na_rep is None else {"na_rep": na_rep}))
    summary = res.summary().with_extra(extra)
    write_summary(summary, out)
    seal(out, "simulate", scenario=(extra or {}).get("scenario"))
    return summary
