"""``reproduce agent-retention``: workflow-aware KV retention against LRU and TTL for agents whose
LLM calls share context (docs/agentic.md, "Workflows that share context").

A network of one LLM engine (Sarathi-Serve, budget 512, 20 ms per iteration, 16-token KV blocks
with prefix caching) and a tool engine (each call takes 1 s). An agent job makes four LLM calls
with a tool call between each two; its class shares context, so every LLM call's prompt is the
job's context so far plus 200..400 new tokens, and each answer 20..60 tokens. Jobs arrive at
1.5 per second (about a dozen in flight). The KV capacity is swept under three retention rules:
``lru``, ``ttl`` (a finished request's prefix pinned 2 s, longer than the tool call) and
``workflow`` (the simulator marks a job's prefix while it will come back; marked blocks are
evicted last). Reported: the share of the LLM engine's prompt tokens served by its cache
(against an unbounded cache's, the ceiling), the tokens it computed and the mean job latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from ..engine.batch_time import ConstantBatchTime
from ..lab.plots import save
from ..memory.config import MemoryConfig
from ..network.model import JobClass, NetEngine, Network
from ..network.simulator import simulate_network
from ..network.workflow import Step, Workflow
from ..policies.real_systems import SarathiServe
from ..workload.arrivals import PoissonArrivals
from ..workload.lengths import Fixed, Uniform
from .common import save_result

RULES = ("lru", "ttl", "workflow")
TTL_S = 2.0
UNBOUNDED = 10 ** 7


class _Sizes(TypedDict):
    duration_s: float
    caches: list[int]


SIZES: dict[bool, _Sizes] = {False: {"duration_s": 600.0, "caches": [8192, 12288, 16384, 20480, 24576, 32768]},
                             True: {"duration_s": 60.0, "caches": [12288, 24576]}}


def agent_network(capacity: int, eviction: str, rate: float = 1.5, calls: int = 4) -> Network:
    """The experiment's network with an LLM engine of ``capacity`` KV tokens and ``eviction``."""
    mem = MemoryConfig(capacity, prefix_caching=True, eviction=eviction, ttl_s=TTL_S if eviction == "ttl" else 0.0)
    llm = NetEngine("llm", SarathiServe(512), ConstantBatchTime(0.02), mem)
    tool = NetEngine("tool", SarathiServe(4096), ConstantBatchTime(1.0))
    steps = []
    for i in range(calls):
        steps.append(Step("llm", Uniform(200, 400), Uniform(20, 60), name=f"llm{i}"))
        if i < calls - 1:
            steps.append(Step("tool", Fixed(1), Fixed(0), name=f"tool{i}"))
    return Network((llm, tool), (JobClass("agent", PoissonArrivals(rate), Workflow.chain(*steps),
                                          share_context=True),))


def measure(capacity: int, eviction: str, duration: float, seed: int = 1) -> dict:
    res = simulate_network(agent_network(capacity, eviction), seed, duration=duration)
    t = res.tokens["llm"]
    v = res.visits
    prompt = int(v.loc[v["engine"] == "llm", "prompt_tokens"].sum())
    jobs = res.jobs
    return {"capacity": capacity, "eviction": eviction, "hit_rate": t["cached"] / prompt,
            "computed_tokens": int(t["processed"]), "recomputed_tokens": int(t["recomputed"]),
            "preemptions": int(t["preemptions"]),
            "mean_e2e_s": float((jobs["completion_time"] - jobs["arrival_time"]).mean()),
            "jobs_completed": int(jobs["completion_time"].notna().sum())}


def run(out: Path, *, fast: bool = False) -> dict:
    """The experiment into ``out``: agent_retention.png and result.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = SIZES[fast]
    dur = size["duration_s"]
    rows = [measure(c, rule, dur) for c in size["caches"] for rule in RULES]
    ceiling = measure(UNBOUNDED, "lru", dur)
    by = {(r["capacity"], r["eviction"]): r for r in rows}
    findings = []
    for c in size["caches"]:
        lru, ttl, wf = by[(c, "lru")], by[(c, "ttl")], by[(c, "workflow")]
        findings.append(
            f"{c:,} KV tokens: hit rate LRU {lru['hit_rate']:.1%}, TTL {ttl['hit_rate']:.1%}, workflow "
            f"{wf['hit_rate']:.1%} (ceiling {ceiling['hit_rate']:.1%}); tokens computed workflow / LRU "
            f"{wf['computed_tokens'] / lru['computed_tokens']:.2f}; mean job latency LRU {lru['mean_e2e_s']:.2f} s, "
            f"TTL {ttl['mean_e2e_s']:.2f} s, workflow {wf['mean_e2e_s']:.2f} s.")
    _plot(rows, ceiling["hit_rate"], size["caches"], out / "agent_retention.png")
    result = {"experiment": "agent-retention", "duration_s": dur, "ttl_s": TTL_S, "findings": findings,
              "figures": ["agent_retention.png"], "rows": rows, "ceiling": ceiling}
    return save_result(out, result)


def table(rows: list[dict]) -> list[str]:
    lines = ["| KV cache (tokens) | rule | hit rate | tokens computed | preemptions | mean job latency (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['capacity']:,} | {r['eviction']} | {r['hit_rate']:.1%} | {r['computed_tokens']:,} | "
                     f"{r['preemptions']} | {r['mean_e2e_s']:.2f} |")
    return lines


def _plot(rows: list[dict], ceiling: float, caches: list[int], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for rule in RULES:
        pts = [r for r in rows if r["eviction"] == rule]
        a1.plot(caches, [r["hit_rate"] for r in pts], marker="o", label=rule)
        a2.plot(caches, [r["mean_e2e_s"] for r in pts], marker="o", label=rule)
    a1.axhline(ceiling, color="black", ls=":", label=f"unbounded cache {ceiling:.1%}")
    a1.set_xlabel("KV cache (tokens)")
    a1.set_ylabel("prompt tokens served by the cache")
    a1.legend(fontsize=8)
    a2.set_xlabel("KV cache (tokens)")
    a2.set_ylabel("mean job latency (s)")
    a2.legend(fontsize=8)
    save(fig, path)
