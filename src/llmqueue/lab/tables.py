"""The tidy tables a sweep writes: one row per point, one row per configuration (seeds pooled),
one row per bisection, each as CSV and Parquet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..sim.manifest import atomic_path
from .growth import combine
from .point import LATENCY_KEYS, estimate_from_row
from .verdict import UNSTABLE, compare_fluid, decide

GROUP_KEYS = ["policy", "token_budget", "max_batch_size", "rate"]


def write_table(df: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    """``stem``.csv and ``stem``.parquet in ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv, pq = out / f"{stem}.csv", out / f"{stem}.parquet"
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(pq) as tmp:
        df.to_parquet(tmp, index=False)
    return [csv, pq]


def points_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in the given (canonical) order; k_max None becomes an empty cell."""
    df = pd.DataFrame(rows)
    if "max_batch_size" in df:
        df["max_batch_size"] = df["max_batch_size"].astype("Int64")
    return df


def pool_group(rows: list[dict]) -> dict:
    """One configuration at one rate, its seeds pooled into one estimate and verdict."""
    first = rows[0]
    n = len(rows)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("stable", "unstable", "inconclusive")}
    out = {k: first[k] for k in ("policy", "token_budget", "max_batch_size", "rate", "rate_rel",
                                 "lambda_star", "rho", "capacity_tokens_per_s",
                                 "tolerance_tokens_per_s")}
    out.update(seeds=n, **{f"seeds_{k}": v for k, v in counts.items()})
    stalled = any(r["slope_method"] == "engine stalls" for r in rows)
    fluid = first["fluid_slope"]
    if stalled:
        out.update(slope=first["slope"], slope_lo=math.nan, slope_hi=math.nan, slope_method="engine stalls",
                   verdict=UNSTABLE, verdict_reason=first["verdict_reason"])
    else:
        est = combine([estimate_from_row(r) for r in rows], first["confidence"])
        horizon = float(np.mean([r["horizon_used_s"] for r in rows]))
        v = decide(est, first["tolerance_tokens_per_s"], horizon)
        out.update(slope=est.slope, slope_lo=est.lo, slope_hi=est.hi, slope_method=est.method,
                   verdict=v.verdict, verdict_reason=v.reason)
        if not (isinstance(fluid, float) and math.isnan(fluid)):
            fc = compare_fluid(est, fluid)
            out.update(fluid_line=fc.fluid_line, fluid_in_ci=fc.in_ci)
    out.setdefault("fluid_line", max(0.0, fluid) if not math.isnan(fluid) else math.nan)
    out.setdefault("fluid_in_ci", False)
    out["fluid_slope"] = fluid
    out["throughput_tokens_per_s"] = float(np.mean([r["throughput_tokens_per_s"] for r in rows]))
    for k in LATENCY_KEYS:
        vals = [r[k] for r in rows if r[k] is not None and not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else math.nan
    return out


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per (policy, budget, k_max, rate), in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in GROUP_KEYS), []).append(r)
    return points_frame([pool_group(g) for g in groups.values()])
