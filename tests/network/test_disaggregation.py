"""Disaggregated prefill/decode in the network simulator, and the P:D split LP."""

from __future__ import annotations

import numpy as np
import pytest

from llmqueue.config import load_scenario
from llmqueue.engine.batch_time import paper_staircase
from llmqueue.errors import ScenarioError
from llmqueue.memory.config import MemoryConfig
from llmqueue.network.capacity_lp import max_load_scale
from llmqueue.network.model import Disaggregation, KVLink, NetEngine, Network
from llmqueue.network.pd_split import (
    colocated_rate,
    decode_batch_limit,
    disaggregated_network,
    pd_split_lp,
    pool_rates,
)
from llmqueue.network.simulator import simulate_network
from llmqueue.policies import make_policy
from llmqueue.workload import Fixed, PoissonArrivals, Uniform

BT = paper_staircase()
KVB = 131072.0                                 # llama-3-8b bytes per token
LINK = KVLink(12.5e9, 0.002)


def _engines(decode_budget=256, kv=200_000):
    pre = NetEngine("p", make_policy("sarathi", 2048), BT)
    dec = NetEngine("d", make_policy("sarathi", decode_budget), BT, MemoryConfig(kv))
    return pre, dec


def _split_visits(res):
    v = res.visits
    pre = v[v["engine"].str.startswith("prefill")].set_index("job_id")
    dec = v[v["engine"].str.startswith("decode")].set_index("job_id")
    return pre, dec.reindex(pre.index)


def test_prefill_leaves_after_its_prompt_and_decode_starts_after_the_transfer():
    pre, dec = _engines()
    net = disaggregated_network(pre, dec, 2, 2, PoissonArrivals(4.0), Uniform(100, 900), Uniform(5, 50),
                                link=LINK, kv_bytes_per_token=KVB)
    res = simulate_network(net, 3, duration=20.0)
    p, d = _split_visits(res)
    assert len(p) == len(res.jobs) and res.jobs["completion_time"].notna().all()
    assert (p["decode_tokens"] == 0).all() and (d["prompt_tokens"] == p["prompt_tokens"]).all()
    assert np.allclose(p["completion_time"], p["prefill_end_time"])       # leaves after its last prompt token
    transfer = LINK.latency_s + p["prompt_tokens"] * KVB / LINK.bandwidth_bytes_per_s
    assert np.allclose(d["arrival_time"], p["completion_time"] + transfer)
    assert np.allclose(d["prefill_end_time"], d["arrival_time"])           # arrives with its prompt computed
    assert (d["first_token_time"] > d["arrival_time"]).all()
    jobs = res.jobs.set_index("job_id")
    assert np.allclose(jobs["completion_time"], d["completion_time"])
    for t in res.tokens.values():                      # decode engines only process decode tokens
        assert t["arrived"] + t.get("recomputed", 0) == t["processed"] + t.get("cached", 0) + t["left"]
    dec_tokens = sum(t["processed"] for n, t in res.tokens.items() if n.startswith("decode"))
    assert dec_tokens == int(d["decode_tokens"].sum())


def test_decode_admission_is_limited_by_memory():
    pre, dec = _engines(decode_budget=2048, kv=4096)     # a handful of 600-token contexts
    net = disaggregated_network(pre, dec, 2, 1, PoissonArrivals(6.0), Fixed(600), Fixed(200),
                                link=LINK, kv_bytes_per_token=KVB)
    res = simulate_network(net, 1, duration=15.0)
    it = res.iterations["decode[0]"]
    assert it["decode_tokens"].max() <= 4096 // 600       # never more decoding requests than fit
    big = simulate_network(disaggregated_network(pre, _engines(2048, 10 ** 6)[1], 2, 1, PoissonArrivals(6.0),
                                                 Fixed(600), Fixed(200), link=LINK, kv_bytes_per_token=KVB),
                           1, duration=15.0)
    assert big.iterations["decode[0]"]["decode_tokens"].max() > 4096 // 600


def test_split_loads_feed_the_capacity_lp():
    pre, dec = _engines(decode_budget=2048, kv=10 ** 7)
    net = disaggregated_network(pre, dec, 3, 2, PoissonArrivals(1.0), Fixed(600), Fixed(300),
                                link=LINK, kv_bytes_per_token=KVB)
    theta = max_load_scale(net).theta
    cap = pre.capacity                                    # same batch time and budget in both pools
    assert theta == pytest.approx(min(3 * cap / 600, 2 * cap / 300))


def test_lp_ratio_and_bounds():
    pre, dec = _engines(decode_budget=256)
    r = pool_rates(pre, dec, 600, 400)
    lp = pd_split_lp(5, r, 600, 400)
    mu_p, mu_d = r.prefill_tokens_per_s / 600, r.decode_tokens_per_s / 400
    assert lp.prefill_continuous == pytest.approx(5 * mu_d / (mu_p + mu_d))
    assert lp.prefill + lp.decode == 5
    assert lp.rate == pytest.approx(max(min(mu_p * p, mu_d * (5 - p)) for p in range(1, 5)))
    narrow = pd_split_lp(5, r, 600, 400, link_bytes_per_s=1e6, kv_bytes_per_token=KVB)
    assert narrow.bottleneck == "link" and narrow.rate < lp.rate
    n, why = decode_batch_limit(dec, 600, 400, tpot_slo_s=0.05)
    assert why == "tpot" and BT.load_time(n) <= 0.05 < BT.load_time(n + 128)
    rate_tight, b = colocated_rate(pre, 4, 600, 400, 0.05)
    assert b == 128 and rate_tight < colocated_rate(pre, 4, 600, 400)[0]
    with pytest.raises(ValueError):
        pd_split_lp(1, r, 600, 400)


def test_lp_optimum_within_one_engine_of_simulated_best():
    """The P:D acceptance test: simulated capacity (overload throughput) of every split of 5
    engines peaks within one engine of the LP's integer optimum."""
    pre, dec = _engines(decode_budget=256)
    r = pool_rates(pre, dec, 600, 400)
    lp = pd_split_lp(5, r, 600, 400)
    horizon, thr = 40.0, {}
    for p in range(1, 5):
        net = disaggregated_network(pre, dec, p, 5 - p, PoissonArrivals(1.5 * lp.rate), Uniform(300, 900),
                                    Uniform(200, 600), link=LINK, kv_bytes_per_token=KVB)
        c = simulate_network(net, 2, horizon=horizon).jobs["completion_time"]
        thr[p] = float(((c > horizon / 2) & (c <= horizon)).sum()) / (horizon / 2)
    best = max(thr, key=thr.get)
    assert abs(best - lp.prefill) <= 1
    assert thr[best] <= lp.rate_continuous * 1.1          # the LP is an upper bound (up to noise)


def test_network_checks_the_split():
    pre, dec = _engines()
    net = disaggregated_network(pre, dec, 1, 1, PoissonArrivals(1.0), Fixed(10), Fixed(10), link=LINK,
                                kv_bytes_per_token=KVB)
    with pytest.raises(ValueError, match="neither an engine nor a router"):
        Network(net.engines, net.classes, net.routers, Disaggregation("prefill", "nope", LINK, KVB))
    with pytest.raises(ValueError, match="both"):
        Network(net.engines, net.classes, net.routers, Disaggregation("prefill", "prefill[0]", LINK, KVB))
    with pytest.raises(ValueError):
        KVLink(0.0)


SCENARIO = """
network:
  engines:
    - {name: prefill, replicas: 2, router: least_tokens, policy: sarathi, token_budget: 2048}
    - {name: decode, replicas: 2, router: least_tokens, policy: sarathi, token_budget: 256,
       memory: {capacity_tokens: 100000}}
  disaggregation: {prefill: prefill, decode: DECODE, model: llama-3-8b,
                   link: {bandwidth_gbps: 100, latency_s: 0.001}}
  classes:
    - name: chat
      arrival: {process: poisson, rate: 3}
      workflow: {chain: [{engine: prefill, prompt_tokens: {dist: fixed, value: 500},
                          decode_tokens: {dist: fixed, value: 50}}]}
simulation: {duration_s: 10}
"""


def test_scenario_form(tmp_path):
    p = tmp_path / "pd.yaml"
    p.write_text(SCENARIO.replace("DECODE", "decode"))
    net = load_scenario(str(p)).build_network()
    dis = net.disaggregation
    assert dis is not None and dis.kv_bytes_per_token == 131072 and dis.link.bandwidth_bytes_per_s == 12.5e9
    assert dis.transfer_s(500) == pytest.approx(0.001 + 500 * 131072 / 12.5e9)
    res = simulate_network(net, 0, duration=10.0)
    assert res.jobs["completion_time"].notna().all()
    p.write_text(SCENARIO.replace("DECODE", "decoder"))
    with pytest.raises(ScenarioError, match="disaggregation.decode"):
        load_scenario(str(p))


def test_same_seed_same_disaggregated_run():
    pre, dec = _engines()

    def run(seed):
        net = disaggregated_network(pre, dec, 2, 2, PoissonArrivals(5.0), Uniform(100, 900), Uniform(5, 80),
                                    link=LINK, kv_bytes_per_token=KVB)
        return simulate_network(net, seed, duration=10.0)
    a, b, c = run(4), run(4), run(5)
    assert a.visits.equals(b.visits) and a.jobs.equals(b.jobs)
    assert not a.jobs.equals(c.jobs)
