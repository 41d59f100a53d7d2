"""``reproduce cache-routing``: cache-aware routing against JSQ (and least outstanding tokens)
over replicas with prefix caches, on Mooncake's conversation trace.

Four identical replicas (vLLM-v1 scheduling, token budget 8192, a 512k-token KV cache of
16-token blocks with prefix caching each; batch time 10 ms + 40 us per token, so 25k tokens/s
each, about 40% busy together on the trace) behind one router
(:func:`llmqueue.network.routed.simulate_routed`). ``cache_aware`` scores a replica by the prompt
tokens its cache holds for the request minus its unprocessed tokens (the rule of vLLM's and
SGLang's cache-aware routers: longest prefix match, balanced against load); ``jsq`` joins the
fewest requests, ``least_tokens`` the least outstanding work. Reported: the block hit rate (in
the trace's 512-token blocks, at first admission; the ceiling of ``trace-stats`` beside it),
prefill tokens computed, mean and p90 TTFT, and the token throughput (prompt and output tokens
of the completed requests over the makespan; at this load it is set by the arrivals, so it
moves little: the cache shows in the work computed and the TTFT).

``--fast`` replays the bundled 600-request sample (the trace's first 200 s); the full run the
first 1,500 requests of the whole trace (see :mod:`.kv_cache` for where it is looked for).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np

from ..engine.batch_time import PiecewiseLinearBatchTime
from ..lab.plots import save
from ..memory.config import MemoryConfig
from ..network.routed import simulate_routed
from ..policies.memory_aware import VLLMV1
from ..workload.trace_stats import stats_of
from .common import save_result
from .kv_cache import conversation_trace

BATCH_TIME = PiecewiseLinearBatchTime(c=10e-3, a=4e-5, b0=0)
BUDGET = 8192
REPLICAS = 4
CACHE_TOKENS = 2**19
RULES = ("jsq", "least_tokens", "cache_aware")


class _Sizes(TypedDict):
    requests: int


SIZES: dict[bool, _Sizes] = {False: {"requests": 1500}, True: {"requests": 600}}


def compare(requests, rules=RULES) -> list[dict]:
    """One row per routing rule."""
    rows = []
    prompt = sum(r.prompt_tokens for r in requests)
    for rule in rules:
        run = simulate_routed(VLLMV1(BUDGET), BATCH_TIME, requests, replicas=REPLICAS, rule=rule,
                              memory=MemoryConfig(CACHE_TOKENS, prefix_caching=True))
        reps = run.replicas
        ttft = np.concatenate([(x.requests["first_token_time"] - x.requests["arrival_time"]).to_numpy()
                               for x in reps])
        cached = sum(x.tokens_cached for x in reps)
        served = sum(int(x.requests.loc[x.requests["completion_time"].notna(), ["prompt_tokens", "decode_tokens"]]
                         .to_numpy().sum()) for x in reps)
        recomputed = sum(x.tokens_recomputed for x in reps)
        rows.append({"rule": rule,
                     "block_hit_rate": sum(x.hash_block_hits for x in reps) / sum(x.hash_blocks for x in reps),
                     "prefill_computed_tokens": prompt - cached + recomputed,
                     "mean_ttft_ms": float(np.nanmean(ttft)) * 1e3,
                     "p90_ttft_ms": float(np.nanpercentile(ttft, 90)) * 1e3,
                     "token_throughput": served / run.end_time,
                     "tokens_processed": sum(x.tokens_processed for x in reps),
                     "makespan_s": run.end_time,
                     "requests_per_replica": np.bincount(list(run.served_by.values()), minlength=REPLICAS).tolist()})
    return rows


def run(out: Path, *, fast: bool = False) -> dict:
    """The experiment into ``out``: cache_routing.png and result.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path, arrays = conversation_trace(fast, SIZES[fast]["requests"])
    ceiling = stats_of(arrays).block_reuse_ceiling or 0.0
    rows = compare(arrays.to_requests())
    by = {r["rule"]: r for r in rows}
    ca, jsq = by["cache_aware"], by["jsq"]
    _plot(rows, ceiling, out / "cache_routing.png")
    findings = [
        f"{len(arrays)} requests of {path.name} over {REPLICAS} replicas ({CACHE_TOKENS:,}-token caches; "
        f"unbounded single-cache ceiling {ceiling:.1%}): cache-aware routing hits {ca['block_hit_rate']:.1%} of the "
        f"prompt blocks against {jsq['block_hit_rate']:.1%} with JSQ, computes {ca['prefill_computed_tokens']:,} "
        f"prefill tokens against {jsq['prefill_computed_tokens']:,}, mean TTFT {ca['mean_ttft_ms']:.0f} ms against "
        f"{jsq['mean_ttft_ms']:.0f} ms (p90 {ca['p90_ttft_ms']:.0f} against {jsq['p90_ttft_ms']:.0f}), token "
        f"throughput {ca['token_throughput']:,.0f} against {jsq['token_throughput']:,.0f} tokens/s.",
    ]
    result = {"experiment": "cache-routing", "trace": path.name, "requests": len(arrays), "replicas": REPLICAS,
              "cache_tokens": CACHE_TOKENS, "block_reuse_ceiling": ceiling, "findings": findings,
              "figures": ["cache_routing.png"], "rows": rows}
    return save_result(out, result)


def table(rows: list[dict]) -> list[str]:
    lines = ["| router | block hit rate | prefill computed | mean TTFT (ms) | p90 TTFT (ms) | tokens/s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['block_hit_rate']:.1%} | {r['prefill_computed_tokens']:,} | "
                     f"{r['mean_ttft_ms']:.0f} | {r['p90_ttft_ms']:.0f} | {r['token_throughput']:,.0f} |")
    return lines


def _plot(rows: list[dict], ceiling: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [r["rule"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.bar(names, [r["block_hit_rate"] for r in rows], color="tab:blue")
    a1.axhline(ceiling, color="black", ls=":", label=f"unbounded-cache ceiling {ceiling:.1%}")
    a1.set_ylabel("block hit rate")
    a1.legend(fontsize=8)
    x = np.arange(len(rows))
    a2.bar(x - 0.2, [r["mean_ttft_ms"] for r in rows], 0.4, label="mean TTFT")
    a2.bar(x + 0.2, [r["p90_ttft_ms"] for r in rows], 0.4, label="p90 TTFT")
    a2.set_xticks(x, names)
    a2.set_ylabel("TTFT (ms)")
    a2.legend(fontsize=8)
    save(fig, path)
