"""Simulation against Theorem 2 and section 4 of the spec (Sarathi, b_max 512, 100 + 100 tokens)."""

import numpy as np
import pytest

from llmqueue import make_policy, paper_staircase, simulate
from llmqueue.analysis import capacity_report
from llmqueue.workload import DeterministicArrivals, Fixed, PoissonArrivals, Workload


def run(policy, budget, rate, duration, prompt=100, decode=100, kmax=None, seed=1, arrivals=None):
    wl = Workload(arrival=arrivals or PoissonArrivals(rate), prompt_tokens=Fixed(prompt),
                  decode_tokens=Fixed(decode), duration_s=duration)
    res = simulate(make_policy(policy, budget, kmax), paper_staircase(), wl.requests(seed), horizon=duration)
    assert res.tokens_arrived == res.tokens_processed + res.tokens_left
    return res


def slope(res, t0):
    it = res.iterations[res.iterations["start_time"] >= t0]
    return np.polyfit(it["start_time"], it["backlog_tokens"], 1)[0]


LAM_STAR = capacity_report(make_policy("sarathi", 512), paper_staircase(), 100, 100).lambda_star


def test_bounded_below_lambda_star():
    res = run("sarathi", 512, 0.9 * LAM_STAR, 1200.0)
    b = res.iterations["backlog_tokens"].to_numpy()
    # no trend (the fluid slope at 1.1 lambda* would be +334 tokens/s) and a small queue
    assert abs(slope(res, 200.0)) < 10
    assert b.max() < 40_000
    assert res.summary()["in_system_at_end"] < 300


def test_fluid_slope_above_lambda_star():
    lam = 1.1 * LAM_STAR
    horizon = 1200.0
    res = run("sarathi", 512, lam, horizon)
    fluid = capacity_report(make_policy("sarathi", 512), paper_staircase(), 100, 100, lam).fluid_slope_tokens_per_s
    # Poisson noise: sd of the arrived tokens over (T/3, T] is 200 * sqrt(lam * 2T/3)
    sd = 200 * np.sqrt(lam * 2 * horizon / 3) / (2 * horizon / 3)
    est = slope(res, horizon / 3)
    assert abs(est - fluid) < 4 * sd, (est, fluid, sd)
    # in overload every batch after the start is full: throughput is exactly b_max / t(b_max)
    it = res.iterations[res.iterations["start_time"] > 60]
    assert ((it["prefill_tokens"] + it["decode_tokens"]) == 512).all()


def test_vertex_c_only_sarathi_128_is_stable():
    lam = 1 / 0.4675
    det = DeterministicArrivals(lam)
    kw = dict(prompt=290, decode=990, kmax=100, arrivals=det)
    n_end = {}
    for pol, budget in [("sarathi", 128), ("orca", 128), ("sarathi", 1024)]:
        res = run(pol, budget, lam, 240.0, **kw)
        n = res.iterations["num_in_system"].to_numpy()
        n_end[(pol, budget)] = (n[len(n) // 2:].max(), n[-50:].mean())
    # Sarathi-128: about 100 requests in the engine, for ever
    assert n_end[("sarathi", 128)][0] <= 102
    for key in [("orca", 128), ("sarathi", 1024)]:
        assert n_end[key][1] > 130, (key, n_end[key])


def test_vertex_c_whole_prefill_policies_cannot_form_a_batch():
    from llmqueue.sim import EngineStalled
    for pol in ("fastertransformer", "vllm"):
        with pytest.raises(EngineStalled, match="no batch"):
            run(pol, 128, 1 / 0.4675, 10.0, prompt=290, decode=990, kmax=100,
                arrivals=DeterministicArrivals(1 / 0.4675))


@pytest.mark.parametrize("frac,unstable", [(0.75, "fastertransformer"), (0.85, "vllm")])
def test_fig1_contrast_below_lambda_star(frac, unstable):
    """Below lambda* of the Fig. 1 workload Sarathi/Orca stay bounded while FasterTransformer
    (already at 0.75 lambda*) and vLLM (at 0.85 lambda*) run away at a steady slope."""
    lam = frac * capacity_report(make_policy("sarathi", 512), paper_staircase(), 129, 112).lambda_star
    for pol in ("sarathi", "orca", unstable):
        res = run(pol, 512, lam, 600.0, prompt=129, decode=112)
        s = slope(res, 200.0)
        if pol == unstable:
            assert s > 200 and res.tokens_left > 100_000, (pol, s)
        else:
            assert abs(s) < 20 and res.tokens_left < 25_000, (pol, s)
