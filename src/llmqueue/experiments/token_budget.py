"""The token budget's throughput-latency trade-off (the paper mentions it; spec section 6).

Sarathi-Serve on the Fig. 1 workload (129 + 112 tokens, fitted staircase) at a fixed 10 req/s,
token budgets from 64 to 2048. A small budget keeps every iteration short (low time between
tokens) but lowers the capacity b/t(b), so prompts queue (high TTFT) and below some budget the
load exceeds capacity; a large budget has capacity to spare and low TTFT, but long iterations
stretch the time between tokens. The points are the sweep
``llmqueue sweep fig1 --absolute --rates 10 --token-budgets 64,...,2048 --seeds 1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ..lab.plots import figure, finish, save
from ..lab.point import run_point
from ..lab.spec import make_spec
from .common import pmap, write_result

RATE = 10.0
BUDGETS = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048)


class _Sizes(TypedDict):
    horizon_s: float
    budgets: tuple[int, ...]


#: Run size of the full experiment and of the --fast one.
SIZES: dict[bool, _Sizes] = {False: {"horizon_s": 600.0, "budgets": BUDGETS},
                             True: {"horizon_s": 150.0, "budgets": (64, 256, 1024)}}


def run(out: Path, *, fast: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    t0 = time.monotonic()
    horizon, budgets = SIZES[fast]["horizon_s"], SIZES[fast]["budgets"]
    spec = make_spec("fig1", rates=[RATE], relative=False, policies=["sarathi"], token_budgets=list(budgets),
                     seeds=[1], horizon_s=horizon, max_horizon_s=horizon)
    refs = {bk: spec.reference_for(*bk) for bk in spec.engine_configs()}
    grid = spec.grid_points(refs)
    order = sorted(range(len(grid)), key=lambda i: grid[i]["rate_rel"], reverse=True)  # slow ones first
    done = pmap(run_point, [(spec.payload, spec.base, grid[i]) for i in order], progress=progress)
    rows: list[Any] = [None] * len(grid)
    for i, r in zip(order, done):
        rows[i] = r
    b = np.array(budgets, dtype=float)
    thr = np.array([r["throughput_tokens_per_s"] for r in rows])
    cap = np.array([r["capacity_tokens_per_s"] for r in rows])
    offered = RATE * (refs[(budgets[0], None)].mean_tokens)

    fig, axes = figure(1, 2, w=6.2, h=4.4)
    ax = axes[0][0]
    ax.plot(b, cap, "k--", lw=1, label="capacity b / t(b)")
    ax.axhline(offered, color="grey", lw=1, ls=":", label=f"offered load ({RATE:g} req/s)")
    for r, x, y in zip(rows, b, thr):
        ax.plot(x, y, "o", color="#2ca02c" if r["verdict"] == "stable" else "#d62728", ms=6)
    ax.plot(b, thr, "-", color="#2ca02c", lw=1, label="throughput (red: unstable)")
    ax.set_xscale("log", base=2)
    finish(ax, "token budget b_max", "tokens/s",
           f"Sarathi-Serve at {RATE:g} req/s, 129 + 112 tokens", title_size=10, which="both")

    ax = axes[0][1]
    for key, lab, c in (("ttft", "TTFT", "#1f77b4"), ("itl", "TBT (ITL)", "#9467bd")):
        for p, st in ((50, "o-"), (99, "s--")):
            ax.plot(b, [r[f"p{p}_{key}_ms"] for r in rows], st, color=c, label=f"{lab} p{p}")
    for r, x in zip(rows, b):
        if r["verdict"] != "stable":
            ax.axvspan(x / 1.2, x * 1.2, color="#d62728", alpha=0.1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    finish(ax, "token budget b_max (shaded: not stable at this load)", "ms",
           "latency against the token budget", title_size=10, which="both")
    figs = [save(fig, out / "token_budget.png")]

    keep = ("token_budget", "rate_rel", "lambda_star", "capacity_tokens_per_s", "throughput_tokens_per_s", "slope",
            "slope_lo", "slope_hi", "verdict", "p50_ttft_ms", "p90_ttft_ms", "p99_ttft_ms", "p50_itl_ms",
            "p90_itl_ms", "p99_itl_ms", "p50_e2el_ms", "p99_e2el_ms")
    numbers = {"rate": RATE, "horizon_s": horizon, "seed": 1, "offered_tokens_per_s": offered,
               "points": [{k: r[k] for k in keep} for r in rows]}
    stable = [r for r in rows if r["verdict"] == "stable"]
    findings = []
    unstable = [r["token_budget"] for r in rows if r["verdict"] != "stable"]
    if unstable:
        which = ("Budget " + str(unstable[0]) + " is") if len(unstable) == 1 else \
            ("Budgets " + ", ".join(map(str, unstable)) + " are")
        findings.append(f"{which} not stable at {RATE:g} req/s: the load exceeds or nears the capacity b/t(b).")
    if stable:
        lo, hi = stable[0], stable[-1]
        findings.append(f"Among stable budgets, going from {lo['token_budget']} to {hi['token_budget']} tokens moves "
                        f"p99 TTFT from {lo['p99_ttft_ms']:.0f} to {hi['p99_ttft_ms']:.0f} ms and p99 TBT from "
                        f"{lo['p99_itl_ms']:.0f} to {hi['p99_itl_ms']:.0f} ms, at the same throughput "
                        f"({lo['throughput_tokens_per_s']:.0f} vs {hi['throughput_tokens_per_s']:.0f} tokens/s).")
    return write_result(out, "token-budget", findings, numbers, figs, time.monotonic() - t0)
