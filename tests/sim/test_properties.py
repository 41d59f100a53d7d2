"""Properties every run must have: determinism, Little's law, token conservation, metric sanity."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmqueue import make_policy, paper_staircase, simulate
from llmqueue.cli import app
from llmqueue.workload import GammaArrivals, Geometric, LogNormal, Workload


def workload(rate=10.0, n=3000):
    return Workload(arrival=GammaArrivals(rate, 0.5), prompt_tokens=LogNormal(120, 0.8, max=2000),
                    decode_tokens=Geometric(100), num_requests=n)


@pytest.mark.parametrize("policy", ["sarathi", "orca", "vllm", "fastertransformer"])
def test_same_seed_same_run_and_conservation(policy):
    pol = make_policy(policy, 2048)
    wl = workload(rate=4.0, n=1500)
    a = simulate(pol, paper_staircase(), wl.requests(7))
    b = simulate(pol, paper_staircase(), wl.requests(7))
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.iterations, b.iterations)
    c = simulate(pol, paper_staircase(), wl.requests(8))
    assert not a.requests["arrival_time"].equals(c.requests["arrival_time"])
    for r in (a, c):
        assert r.tokens_arrived == r.tokens_processed + r.tokens_left
        it = r.iterations
        assert int((it["prefill_tokens"] + it["decode_tokens"]).sum()) == r.tokens_processed
        assert r.tokens_processed == int((r.requests["prompt_tokens"] + r.requests["decode_tokens"]).sum())


def test_littles_law():
    """Time-average number in system = throughput x mean time in system (within sampling error)."""
    res = simulate(make_policy("sarathi", 512), paper_staircase(), workload(rate=4.0, n=4000).requests(3))
    req = res.requests
    # exact N(t) from arrivals and completions
    times = np.concatenate([req["arrival_time"], req["completion_time"]])
    steps = np.concatenate([np.ones(len(req)), -np.ones(len(req))])
    order = np.lexsort((-steps, times))
    t, n = times[order], np.cumsum(steps[order])
    area = float(np.sum(n[:-1] * np.diff(t)))
    span = t[-1] - t[0]
    lam = len(req) / span
    w = float((req["completion_time"] - req["arrival_time"]).mean())
    assert area / span == pytest.approx(lam * w, rel=1e-9)
    # the iteration-start samples of the number in system, weighted by iteration length, agree
    it = res.iterations
    dur = it["end_time"] - it["start_time"]
    sampled = float((it["num_in_system"] * dur).sum() / span)
    assert sampled == pytest.approx(lam * w, rel=0.05)


def test_latency_metrics_consistent():
    res = simulate(make_policy("sarathi", 512), paper_staircase(), workload(rate=4.0, n=2000).requests(5))
    s = res.summary()
    req = res.requests
    ttft = (req["first_token_time"] - req["arrival_time"]).dropna()
    assert s["mean_ttft_ms"] == pytest.approx(ttft.mean() * 1e3)
    assert s["p99_ttft_ms"] >= s["p90_ttft_ms"] >= s["p50_ttft_ms"] > 0
    # every ITL gap is at least one iteration (t(1) = 46.75 ms) and ITL count = output tokens - requests
    assert res.itl.min() >= paper_staircase().load_time(1) - 1e-12
    dec = req["decode_tokens"]
    assert len(res.itl) == int((dec[dec > 0] - 1).sum())
    # prefill end <= first token <= completion; arrival <= prefill end
    assert (req["prefill_end_time"] >= req["arrival_time"]).all()
    has_out = req["decode_tokens"] > 0
    assert (req.loc[has_out, "first_token_time"] > req.loc[has_out, "prefill_end_time"]).all()
    assert (req["completion_time"] >= req["prefill_end_time"]).all()


def test_horizon_keeps_unfinished_requests():
    res = simulate(make_policy("sarathi", 512), paper_staircase(), workload(rate=30.0, n=3000).requests(1),
                   horizon=30.0)
    req = res.requests
    assert res.end_time == 30.0
    assert req["completion_time"].isna().sum() > 0
    assert (res.iterations["end_time"] <= 30.0).all()
    assert res.tokens_arrived == res.tokens_processed + res.tokens_left


def test_capacity_json_and_summary_files(tmp_path):
    r = CliRunner().invoke(app, ["capacity", "theorem2", "--json"])
    assert r.exit_code == 0
    rep = json.loads(r.output)
    assert rep["lambda_star"] == pytest.approx(16.7145, abs=1e-3) and rep["stable"] == "stable"
    r = CliRunner().invoke(app, ["simulate", "fig1", "--num-requests", "300", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "summary.json").read_text())
    for key in ("token_throughput", "request_throughput", "p99_ttft_ms", "p50_itl_ms", "mean_e2el_ms",
                "mean_tpot_ms", "tokens_conserved", "capacity", "scenario"):
        assert key in s
    assert s["tokens_conserved"] is True and s["completed"] == 300
