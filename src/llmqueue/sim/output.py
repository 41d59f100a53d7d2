"""Write a run to a directory: requests.csv, iterations.csv, batches.csv (if recorded), summary.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .batches import compositions_table
from .engine import IterationLog, RequestLog
from .simulate import SimResult


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_run(res: SimResult, out: Path, extra: dict | None = None) -> dict:
    """Write the run's tables and summary; returns the summary dict."""
    out.mkdir(parents=True, exist_ok=True)
    res.requests[list(RequestLog.COLUMNS)].to_csv(out / "requests.csv", index=False, na_rep="")
    res.iterations[list(IterationLog.COLUMNS)].to_csv(out / "iterations.csv", index=False)
    if res.compositions is not None:
        compositions_table(res.compositions, res.labels).to_csv(out / "batches.csv", index=False)
    summary = res.summary()
    if extra:
        summary.update(extra)
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    return summary
