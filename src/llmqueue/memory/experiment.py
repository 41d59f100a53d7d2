"""The memory-bound experiment: sweep the KV capacity, measure the maximum stable rate, compare.

The empirical maximum stable rate is the useful token rate in overload (Poisson arrivals at
twice the theoretical capacity, tokens processed minus tokens recomputed over the second half
of the horizon, once the engine is saturated) over the mean tokens per request: the rate of
requests the engine can carry. The batch time is linear in the load (the paper's staircase with its steps
smoothed, c = 11.28 ms, a = 35.47 ms / 128 tokens), so the mean batch time is the batch time
of the mean load and the theory's t_bar is exact.
"""

from __future__ import annotations

import numpy as np

from ..engine.batch_time import PiecewiseLinearBatchTime
from ..workload import Geometric, LogNormal, PoissonArrivals, Uniform, Workload
from .config import MemoryConfig
from .policies import ThresholdAdmission, VLLMV1
from ..sim.simulate import simulate
from .theory import memory_capacity

BATCH_TIME = PiecewiseLinearBatchTime(c=11.28e-3, a=35.47e-3 / 128, b0=0)
BUDGET = 512
CAPACITIES = (4096, 8192, 16384, 32768, 65536, 131072)
DISTRIBUTIONS = {
    "uniform prompt 20-300, geometric output mean 100": (Uniform(20, 300), Geometric(100)),
    "lognormal prompt mean 200, uniform output 10-200": (LogNormal(200, 0.8, max=2000), Uniform(10, 200)),
}


def saturated_rate(policy, memory: MemoryConfig, prompt, decode, rate: float, horizon: float,
                   seed: int = 0) -> dict:
    """Completions per second over the second half of an overloaded run, and its preemptions."""
    wl = Workload(arrival=PoissonArrivals(rate), prompt_tokens=prompt, decode_tokens=decode,
                  duration_s=horizon)
    res = simulate(policy, BATCH_TIME, wl.requests(seed), memory=memory, horizon=horizon)
    it, pre = res.iterations, res.preemptions
    late = it["end_time"].to_numpy() > horizon / 2
    work = int((it["prefill_tokens"].to_numpy()[late] + it["decode_tokens"].to_numpy()[late]).sum())
    wasted = int(pre.loc[pre["time"] > horizon / 2, "kv_tokens"].sum()) if len(pre) else 0
    s = res.summary()
    assert s["tokens_conserved"] and s["peak_kv_tokens"] <= memory.capacity_tokens
    m = float(prompt.mean) + float(decode.mean)
    return {"rate": (work - wasted) / (horizon / 2) / m, "preemptions": s["preemptions"]}


def sweep(horizon: float = 60.0, capacities=CAPACITIES) -> list[dict]:
    """One row per (distribution, KV capacity): theory, and the two policies' saturated rates."""
    rows = []
    for dist, (p, d) in DISTRIBUTIONS.items():
        for m in capacities:
            mem = MemoryConfig(m)
            th = memory_capacity(VLLMV1(BUDGET), BATCH_TIME, m, mem.block_size, p, d)
            thr = ThresholdAdmission(BUDGET, threshold=1.0, reserve="mean", mean_decode=float(d.mean))
            e_thr = saturated_rate(thr, mem, p, d, 2 * th.capacity, horizon)
            e_v1 = saturated_rate(VLLMV1(BUDGET), mem, p, d, 2 * th.capacity, horizon)
            rows.append({"distribution": dist, "kv_capacity_tokens": m, "binding": th.binding,
                         "lambda_memory": th.lambda_memory, "lambda_compute": th.lambda_compute,
                         "theory": th.capacity, "threshold_rate": e_thr["rate"],
                         "threshold_preemptions": e_thr["preemptions"], "vllm_v1_rate": e_v1["rate"],
                         "vllm_v1_preemptions": e_v1["preemptions"],
                         "threshold_error": e_thr["rate"] / th.capacity - 1,
                         "empirical_binding": "memory" if e_thr["rate"] < 0.95 * th.lambda_compute else "compute"})
    return rows


def overload_comparison(memory_tokens: int = 16384, load: float = 0.95, horizon: float = 60.0) -> dict:
    """vLLM-v1 preemption against threshold admission at ``load`` x the memory capacity."""
    p, d = DISTRIBUTIONS["uniform prompt 20-300, geometric output mean 100"]
    mem = MemoryConfig(memory_tokens)
    th = memory_capacity(VLLMV1(BUDGET), BATCH_TIME, memory_tokens, mem.block_size, p, d)
    wl = Workload(arrival=PoissonArrivals(load * th.capacity), prompt_tokens=p, decode_tokens=d,
                  duration_s=horizon)
    reqs = list(wl.requests(1))
    out = {"kv_capacity_tokens": memory_tokens, "rate": load * th.capacity, "load": load}
    pols = {"vllm-v1": VLLMV1(BUDGET),
            "threshold-mean": ThresholdAdmission(BUDGET, threshold=1.0, reserve="mean", mean_decode=float(d.mean)),
            "threshold-declared": ThresholdAdmission(BUDGET, threshold=1.0, reserve="declared")}
    for name, pol in pols.items():
        s = simulate(pol, BATCH_TIME, reqs, memory=mem).summary()
        out[name] = {k: s[k] for k in ("completed", "preemptions", "tokens_recomputed", "token_throughput",
                                        "p99_e2el_ms", "p99_ttft_ms", "duration_s", "tokens_conserved")}
    return out
