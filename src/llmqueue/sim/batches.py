"""Batch compositions in the paper's Fig. 8 notation ("Ad" a decode token of A, "Dp" a prefill
token of D, "Dp29" a 29-token prefill chunk), and as a tidy table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..engine.plan import BatchPlan


def format_plan(plan: BatchPlan, labels: dict[int, str] | None = None) -> str:
    """``[Ad Bd Cd Dp]``: entries in request order (FCFS for the built-in policies)."""
    labels = labels or {}
    items = [(rid, "p", n) for rid, n in plan.prefill] + [(rid, "d", 1) for rid in plan.decode]
    items.sort(key=lambda x: x[0])
    parts = [f"{labels.get(rid, str(rid))}{kind}{'' if n == 1 else n}" for rid, kind, n in items]
    return "[" + " ".join(parts) + "]"


def compositions_table(plans: Sequence[BatchPlan], labels: dict[int, str] | None = None) -> pd.DataFrame:
    """One row per (iteration, request) with the kind ('prefill'/'decode') and token count."""
    labels = labels or {}
    rows = []
    for i, plan in enumerate(plans):
        for rid, n in plan.prefill:
            rows.append((i, rid, labels.get(rid, ""), "prefill", n))
        for rid in plan.decode:
            rows.append((i, rid, labels.get(rid, ""), "decode", 1))
    return pd.DataFrame(rows, columns=["iteration", "request_id", "label", "kind", "tokens"])
