"""The kv-cache and cache-routing experiments' machinery on a few requests of the bundled
Mooncake sample (the --fast and full runs are `llmqueue reproduce kv-cache|cache-routing`)."""

from llmqueue.experiments import cache_routing, kv_cache
from llmqueue.workload.trace_stats import stats_of


def test_kv_cache_sweep_and_routing_on_a_small_sample():
    path, arrays = kv_cache.conversation_trace(True, 80)
    assert path.name == "mooncake_conversation_head600.jsonl" and len(arrays) == 80
    ceiling = stats_of(arrays).block_reuse_ceiling
    rows = kv_cache.sweep(arrays.to_requests(), (2**18, 2**21))
    rates = [r["block_hit_rate"] for r in rows]
    assert rates == sorted(rates) and rates[-1] <= ceiling and rows[-1]["cache_tokens"] == "unbounded"
    assert rows[-1]["prefill_computed_tokens"] <= rows[0]["prefill_computed_tokens"]
    assert len(kv_cache.table(rows)) == 2 + len(rows)
    by = {r["rule"]: r for r in cache_routing.compare(arrays.to_requests(), ("jsq", "cache_aware"))}
    assert by["cache_aware"]["block_hit_rate"] >= by["jsq"]["block_hit_rate"]
    assert sum(by["jsq"]["requests_per_replica"]) == 80
