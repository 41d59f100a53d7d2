"""``reproduce kv-cache``: prefix-cache hit rate, recomputed prefill and TTFT against the cache
size, on Mooncake's conversation trace, with the unbounded-cache ceiling as a line.

One engine (vLLM-v1 scheduling, token budget 8192, 16-token KV blocks, prefix caching with the
KV manager's LRU tree eviction) replays the trace at its own arrival times; the batch time is
linear, 10 ms + 10 us per token (100k tokens/s: about 45% busy on the trace without a cache).
The KV capacity (the cache: blocks no running request references are the cached ones) is
swept; "unbounded" holds every prompt of the run. The hit rate is counted in the trace's
512-token blocks (a block hits when the cache holds its whole content at the request's first
admission, :meth:`llmqueue.engine.kv.KVManager.lookup_hash_blocks`), the measure of
``trace-stats``' ``block_reuse_ceiling``; the ceiling of the replayed requests is drawn as a
line (requests arriving while an earlier one with the same prefix is still in prefill miss, so
even the unbounded cache stays a little under it). Prefill computed = prompt tokens not served
by the cache plus tokens recomputed after preemptions; cache-served tokens count every admission,
so a request preempted by recomputation that finds its own published blocks again counts twice
(which is why they can exceed the block hit rate's share at small sizes).

``--fast`` replays the first 300 requests (100 s) of the 600-request sample bundled with the
package on four sizes; the full run replays the first 1,500 requests (about 440 s) of the whole trace
from ``../shared/traces/mooncake/`` (or ``LLMQUEUE_MOONCAKE_TRACE``) on six sizes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypedDict

from ..engine.batch_time import PiecewiseLinearBatchTime
from ..engine.request import Request
from ..errors import ExperimentError
from ..lab.plots import save
from ..memory.config import MemoryConfig
from ..policies.memory_aware import VLLMV1
from ..sim.simulate import simulate
from ..workload.arrays import RequestArrays
from ..workload.mooncake import read_mooncake_arrays
from ..workload.trace_stats import stats_of
from .common import save_result

BATCH_TIME = PiecewiseLinearBatchTime(c=10e-3, a=1e-5, b0=0)
BUDGET = 8192
BLOCK = 16
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "traces" / "mooncake_conversation_head600.jsonl"


class _Sizes(TypedDict):
    requests: int
    capacities: tuple[int, ...]


SIZES: dict[bool, _Sizes] = {
    False: {"requests": 1500, "capacities": (2**18, 2**19, 2**20, 2**21, 2**22, 2**23)},
    True: {"requests": 300, "capacities": (2**18, 2**19, 2**20, 2**21)},
}


def conversation_trace(fast: bool, n: int | None = None) -> tuple[Path, RequestArrays]:
    """The trace file (the bundled sample with ``fast``) and its first ``n`` requests (default
    ``SIZES[fast]['requests']``)."""
    n = SIZES[fast]["requests"] if n is None else n
    path = SAMPLE
    if not fast:
        env = os.environ.get("LLMQUEUE_MOONCAKE_TRACE")
        here = Path(__file__).resolve()
        candidates = [Path(env)] if env else [p / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl"
                                              for p in (Path.cwd().parent, *here.parents)]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise ExperimentError("the full kv-cache experiment needs Mooncake's conversation_trace.jsonl: "
                                  "put it under ../shared/traces/mooncake/ or name it with "
                                  "LLMQUEUE_MOONCAKE_TRACE (or run with --fast on the bundled sample)")
        path = found[0]
    a = read_mooncake_arrays(path)
    return path, a.slice(0, min(n, len(a)))


def cache_row(requests: list[Request], capacity: int, label: str | None = None) -> dict:
    """One run with a prefix cache of ``capacity`` KV tokens: hit rates, prefill work, TTFT."""
    res = simulate(VLLMV1(BUDGET), BATCH_TIME, requests,
                   memory=MemoryConfig(capacity, block_size=BLOCK, prefix_caching=True))
    s = res.summary()
    prompt = sum(r.prompt_tokens for r in requests)
    assert s["tokens_conserved"] and s["completed"] == len(requests)
    return {"cache_tokens": label or capacity, "capacity_tokens": capacity,
            "block_hit_rate": res.hash_block_hits / res.hash_blocks,
            "cache_served_tokens": res.tokens_cached,
            "prefill_computed_tokens": prompt - res.tokens_cached + res.tokens_recomputed,
            "tokens_recomputed": res.tokens_recomputed, "preemptions": s["preemptions"],
            "mean_ttft_ms": s["mean_ttft_ms"], "p90_ttft_ms": s["p90_ttft_ms"],
            "token_throughput": s["token_throughput"]}


def sweep(requests: list[Request], capacities: tuple[int, ...]) -> list[dict]:
    rows = [cache_row(requests, c) for c in capacities]
    everything = sum(r.total_tokens for r in requests)
    rows.append(cache_row(requests, -(-everything // BLOCK) * BLOCK, "unbounded"))
    return rows


def run(out: Path, *, fast: bool = False) -> dict:
    """The experiment into ``out``: kv_cache.png and result.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path, arrays = conversation_trace(fast)
    st = stats_of(arrays)
    rows = sweep(arrays.to_requests(), SIZES[fast]["capacities"])
    _plot(rows, st.block_reuse_ceiling or 0.0, out / "kv_cache.png")
    small, big = rows[0], rows[-1]
    findings = [
        f"{len(arrays)} requests of Mooncake's conversation trace ({path.name}): {st.block_reuse_ceiling:.1%} of "
        f"their prompt blocks were seen in an earlier request (the unbounded-cache ceiling).",
        f"From {small['capacity_tokens']:,} KV tokens to unbounded, the block hit rate rises from "
        f"{small['block_hit_rate']:.1%} to {big['block_hit_rate']:.1%} (never above the ceiling), the prefill "
        f"computed falls from {small['prefill_computed_tokens']:,} to {big['prefill_computed_tokens']:,} tokens, "
        f"and the mean TTFT from {small['mean_ttft_ms']:.0f} ms to {big['mean_ttft_ms']:.0f} ms.",
    ]
    result = {"experiment": "kv-cache", "trace": path.name, "requests": len(arrays),
              "block_reuse_ceiling": st.block_reuse_ceiling, "findings": findings, "figures": ["kv_cache.png"],
              "rows": rows}
    return save_result(out, result)


def table(rows: list[dict]) -> list[str]:
    """The sweep as a Markdown table."""
    lines = ["| cache (KV tokens) | block hit rate | cache-served tokens | prefill computed | preemptions | "
             "mean TTFT (ms) | p90 TTFT (ms) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["cache_tokens"]
        lines.append(f"| {c if isinstance(c, str) else format(c, ',')} | {r['block_hit_rate']:.1%} | "
                     f"{r['cache_served_tokens']:,} | {r['prefill_computed_tokens']:,} | {r['preemptions']} | "
                     f"{r['mean_ttft_ms']:.0f} | {r['p90_ttft_ms']:.0f} |")
    return lines


def _plot(rows: list[dict], ceiling: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sized = rows[:-1]
    x = [r["capacity_tokens"] for r in sized]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    a1.plot(x, [r["block_hit_rate"] for r in sized], "o-", label="block hit rate (LRU tree)")
    a1.axhline(ceiling, color="black", ls=":", label=f"unbounded-cache ceiling {ceiling:.1%}")
    a1.axhline(rows[-1]["block_hit_rate"], color="tab:green", lw=0.8, label="simulated unbounded cache")
    a1.set_xscale("log", base=2)
    a1.set_xlabel("KV cache (tokens)")
    a1.set_ylabel("hit rate")
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    a2.plot(x, [r["mean_ttft_ms"] / 1e3 for r in sized], "o-", label="mean TTFT")
    a2.plot(x, [r["p90_ttft_ms"] / 1e3 for r in sized], "s-", label="p90 TTFT")
    a2.axhline(rows[-1]["mean_ttft_ms"] / 1e3, color="tab:green", lw=0.8, label="mean TTFT, unbounded")
    a2.set_xscale("log", base=2)
    a2.set_yscale("log")
    a2.set_xlabel("KV cache (tokens)")
    a2.set_ylabel("TTFT (s)")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    save(fig, path)
