"""``reproduce pd-split``: how many of N GPUs should prefill, and when disaggregation pays.

Chat requests (prompts uniform 300..900 tokens, answers uniform 100..300; paper staircase batch
time; KV memory of 200,000 tokens per decode or colocated engine; llama-3-8b KV size over a
100 Gbit/s link with 1 ms latency).

1. **P:D sweep.** N engines split into P prefill engines (Sarathi, budget 2048) and N - P decode
   engines (Sarathi, decode batch cut to meet the tight TPOT SLO); each split simulated in
   overload (1.5 times the LP's best rate): its job throughput is the split's capacity. The LP of
   :mod:`llmqueue.network.pd_split` gives ``lambda(P) = min(mu_p P / p, mu_d (N - P) / d)`` and
   its optimum (continuous and integer), marked in the plot.
2. **Colocated against disaggregated** on the same N GPUs, under a TTFT SLO of 2 s and a tight
   (50 ms) or loose (600 ms) TPOT SLO: goodput is the largest request rate at which 90% of the
   requests meet both (found by bisection). Colocated engines run Sarathi-Serve (chunked prefill)
   with the largest token budget whose iteration meets the TPOT SLO; the disaggregated system
   takes the LP's split for that SLO. DistServe's finding: disaggregation wins when the TPOT SLO
   is tight (colocated engines must cut their budget, and lose throughput, to protect decodes
   from prefill chunks), colocation when it is loose (no GPU is stranded in a pool).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.batch_time import paper_staircase
from ..lab.plots import figure, finish, save
from ..memory.config import MemoryConfig
from ..memory.hardware import get_model
from ..network.model import KVLink, NetEngine
from ..network.pd_split import (
    PDSplit,
    budget_for_tpot,
    colocated_network,
    colocated_rate,
    decode_batch_limit,
    disaggregated_network,
    pd_split_lp,
    pool_rates,
)
from ..network.simulator import simulate_network
from ..policies import make_policy
from ..workload import PoissonArrivals, Uniform
from .common import pmap, write_result

PROMPT, DECODE = Uniform(300, 900), Uniform(100, 300)
KV_TOKENS = 200_000
PREFILL_BUDGET = 2048
TTFT_SLO_S = 2.0
TPOT_SLOS = {"tight": 0.05, "loose": 0.6}
ATTAIN = 0.9
DRAIN_S = 30.0
LINK = KVLink(100e9 / 8, 0.001)
MODEL = "llama-3-8b"
SEED = 1

#: Run size of the full experiment and of the --fast one.
SIZES: dict[bool, dict[str, Any]] = {False: {"gpus": 8, "horizon_s": 300.0, "bisect_steps": 7},
                                     True: {"gpus": 6, "horizon_s": 80.0, "bisect_steps": 5}}


def kv_bytes() -> float:
    return float(get_model(MODEL).kv_bytes_per_token)


def engines(tpot_slo_s: float | None) -> tuple[NetEngine, NetEngine, NetEngine]:
    """``(prefill, decode, colocated)`` engines for a TPOT SLO (None: no SLO)."""
    bt, mem = paper_staircase(), MemoryConfig(KV_TOKENS)
    pre = NetEngine("prefill", make_policy("sarathi", PREFILL_BUDGET), bt)
    full = NetEngine("decode", make_policy("sarathi", PREFILL_BUDGET), bt, mem)
    n, _ = decode_batch_limit(full, PROMPT.mean, DECODE.mean, tpot_slo_s)
    dec = NetEngine("decode", make_policy("sarathi", max(n, 1)), bt, mem)
    colo = NetEngine("engine", make_policy("sarathi", max(budget_for_tpot(full, tpot_slo_s), 1)), bt, mem)
    return pre, dec, colo


def lp_split(gpus: int, tpot_slo_s: float | None) -> PDSplit:
    pre, dec, _ = engines(tpot_slo_s)
    rates = pool_rates(pre, dec, PROMPT.mean, DECODE.mean, tpot_slo_s)
    return pd_split_lp(gpus, rates, PROMPT.mean, DECODE.mean, link_bytes_per_s=LINK.bandwidth_bytes_per_s,
                       kv_bytes_per_token=kv_bytes())


def _network(kind: str, gpus: int, n_prefill: int, rate: float, tpot_slo_s: float | None):
    pre, dec, colo = engines(tpot_slo_s)
    if kind == "colocated":
        return colocated_network(colo, gpus, PoissonArrivals(rate), PROMPT, DECODE)
    return disaggregated_network(pre, dec, n_prefill, gpus - n_prefill, PoissonArrivals(rate), PROMPT, DECODE,
                                 link=LINK, kv_bytes_per_token=kv_bytes())


def saturated_throughput(gpus: int, n_prefill: int, rate: float, horizon: float, tpot_slo_s: float | None,
                         seed: int = SEED) -> float:
    """Jobs completed per second over the second half of an overloaded run of the split."""
    res = simulate_network(_network("disaggregated", gpus, n_prefill, rate, tpot_slo_s), seed, horizon=horizon)
    c = res.jobs["completion_time"]
    return float(((c > horizon / 2) & (c <= horizon)).sum() / (horizon / 2))


def slo_attainment(kind: str, gpus: int, n_prefill: int, rate: float, horizon: float, tpot_slo_s: float,
                   seed: int = SEED) -> dict[str, float]:
    """Share of the jobs arriving after the first tenth of the horizon that meet the TTFT and TPOT
    SLOs, with the medians of TTFT and TPOT. Arrivals stop at the horizon; the run goes on for
    :data:`DRAIN_S` more seconds, and a job unfinished by then misses."""
    res = simulate_network(_network(kind, gpus, n_prefill, rate, tpot_slo_s), seed, duration=horizon,
                           horizon=horizon + DRAIN_S)
    jobs = res.jobs.set_index("job_id")
    v = res.visits
    pool = "engine" if kind == "colocated" else "decode"
    dv = v[v["engine"].str.startswith(pool)].set_index("job_id")
    window = jobs[(jobs["arrival_time"] >= 0.1 * horizon) & (jobs["arrival_time"] <= horizon)]
    if not len(window):
        return {"attainment": 0.0, "p50_ttft_s": math.nan, "p50_tpot_s": math.nan, "jobs": 0}
    d = dv.reindex(window.index)
    ttft = (d["first_token_time"] - window["arrival_time"]).to_numpy(dtype=float)
    steps = np.maximum(d["decode_tokens"].to_numpy(dtype=float) - 1, 1)
    tpot = ((d["completion_time"] - d["first_token_time"]).to_numpy(dtype=float)) / steps
    ok = (ttft <= TTFT_SLO_S) & (tpot <= tpot_slo_s) & np.isfinite(d["completion_time"].to_numpy(dtype=float))
    return {"attainment": float(ok.mean()), "p50_ttft_s": float(np.nanmedian(ttft)),
            "p50_tpot_s": float(np.nanmedian(tpot)), "jobs": int(len(window))}


def goodput(kind: str, gpus: int, n_prefill: int, tpot_slo_s: float, hi: float, horizon: float,
            steps: int) -> dict[str, Any]:
    """The largest rate in [0, hi] with SLO attainment >= 90%, by bisection (``steps`` halvings)."""
    lo, best, tried = 0.0, None, []
    for _ in range(steps):
        mid = (lo + hi) / 2
        a = slo_attainment(kind, gpus, n_prefill, mid, horizon, tpot_slo_s)
        tried.append({"rate": mid, **a})
        if a["attainment"] >= ATTAIN:
            lo, best = mid, a
        else:
            hi = mid
    return {"goodput": lo, "at_goodput": best, "tried": tried}


def run(out: Path, *, fast: bool = False) -> dict:
    t0 = time.monotonic()
    size = SIZES[fast]
    n, horizon, steps = size["gpus"], size["horizon_s"], size["bisect_steps"]
    tight = TPOT_SLOS["tight"]
    lp = lp_split(n, tight)
    splits = list(range(1, n))
    sat = pmap(saturated_throughput, [(n, p, 1.5 * lp.rate, horizon, tight) for p in splits])
    best_sim = splits[int(np.argmax(sat))]
    mu_p, mu_d = lp.rates.prefill_tokens_per_s, lp.rates.decode_tokens_per_s
    lp_line = [min(mu_p * p / PROMPT.mean, mu_d * (n - p) / DECODE.mean) for p in splits]

    cases = []
    for name, slo in TPOT_SLOS.items():
        split = lp_split(n, slo)
        colo_rate, colo_budget = colocated_rate(engines(slo)[2], n, PROMPT.mean, DECODE.mean, slo)
        hi = 1.3 * max(split.rate, colo_rate)
        cases.append((name, slo, split, colo_rate, colo_budget, hi))
    tasks = [(kind, n, split.prefill, slo, hi, horizon, steps)
             for _, slo, split, _, _, hi in cases for kind in ("colocated", "disaggregated")]
    got = pmap(goodput, tasks)
    comparison = {}
    for i, (name, slo, split, colo_rate, colo_budget, _) in enumerate(cases):
        comparison[name] = {"tpot_slo_s": slo, "ttft_slo_s": TTFT_SLO_S, "colocated_token_budget": colo_budget,
                            "colocated_capacity_rate": colo_rate, "split": f"{split.prefill}P:{split.decode}D",
                            "decode_batch": split.rates.decode_batch, "disaggregated_capacity_rate": split.rate,
                            "colocated": got[2 * i], "disaggregated": got[2 * i + 1]}

    fig, axes = figure(1, 2, w=6.0, h=4.4)
    ax = axes[0][0]
    ax.plot(splits, sat, "o-", color="#1f77b4", label="simulated capacity (overload)")
    ax.plot(splits, lp_line, "k--", lw=1, label="LP: min(prefill, decode pool)")
    ax.axvline(lp.prefill_continuous, color="grey", ls=":", lw=1,
               label=f"LP optimum P* = {lp.prefill_continuous:.2f}")
    ax.plot([lp.prefill], [lp.rate], "r*", ms=14, label=f"LP integer optimum {lp.prefill}P:{lp.decode}D")
    finish(ax, f"prefill engines P (of {n})", "requests/s",
           f"P:D split, TPOT SLO {tight * 1e3:g} ms (decode batch {lp.rates.decode_batch})", title_size=10,
           legend={})
    ax = axes[0][1]
    x = np.arange(len(cases))
    for k, (kind, col) in enumerate((("colocated", "#ff7f0e"), ("disaggregated", "#2ca02c"))):
        vals = [comparison[c[0]][kind]["goodput"] for c in cases]
        ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, color=col, label=f"{kind} (simulated goodput)")
        caps = [comparison[c[0]][f"{kind}_capacity_rate"] for c in cases]
        ax.plot(x + (k - 0.5) * 0.38, caps, "k_", ms=18, mew=2)
    ax.set_xticks(x, [f"TPOT {c[1] * 1e3:g} ms\n({comparison[c[0]]['split']})" for c in cases])
    finish(ax, "", "requests/s at 90% SLO attainment",
           f"{n} GPUs, TTFT SLO {TTFT_SLO_S:g} s (bars: goodput, dashes: capacity bound)", title_size=10,
           legend={})
    figs = [save(fig, out / "pd_split.png")]

    numbers = {"gpus": n, "horizon_s": horizon, "seed": SEED, "mean_prompt": PROMPT.mean, "mean_decode": DECODE.mean,
               "lp": lp.to_dict(), "sweep": [{"prefill": p, "decode": n - p, "simulated_rate": s, "lp_rate": q}
                                             for p, s, q in zip(splits, sat, lp_line)],
               "best_simulated_prefill": best_sim, "comparison": comparison}
    findings = [f"P:D split of {n} engines (TPOT SLO {tight * 1e3:g} ms): the LP puts the optimum at "
                f"P* = {lp.prefill_continuous:.2f} prefill engines (integer {lp.prefill}P:{lp.decode}D, "
                f"{lp.rate:.2f} req/s); simulation's best split is {best_sim}P:{n - best_sim}D "
                f"({max(sat):.2f} req/s)."]
    for name, c in comparison.items():
        cg, dg = c["colocated"]["goodput"], c["disaggregated"]["goodput"]
        winner = "disaggregated" if dg > cg else "colocated" if cg > dg else "neither"
        findings.append(f"TPOT SLO {c['tpot_slo_s'] * 1e3:g} ms ({name}): goodput colocated {cg:.2f} req/s "
                        f"(budget {c['colocated_token_budget']}) vs disaggregated {dg:.2f} req/s ({c['split']}): "
                        f"{winner} wins.")
    return write_result(out, "pd-split", findings, numbers, figs, time.monotonic() - t0)
