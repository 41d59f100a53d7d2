"""Theorem 2 numbers from the spec, the fluid slope, and the k_max region at vertex C."""


import pytest

from llmqueue import ConstantBatchTime, PiecewiseLinearBatchTime, make_policy, paper_staircase
from llmqueue.analysis import best_token_rate, capacity_report, peak_token_rate, stability_region_scale


def test_paper_batch_times():
    bt = paper_staircase()
    assert bt.load_time(128) == pytest.approx(0.04675)
    assert bt.load_time(512) == pytest.approx(0.15316)
    assert bt.load_time(1024) == pytest.approx(0.29504)
    assert peak_token_rate(bt, 512) / 1e3 == pytest.approx(3.343, abs=5e-4)


def test_lambda_star_theorem2_and_fig1():
    bt = paper_staircase()
    r = capacity_report(make_policy("sarathi", 512), bt, 100, 100, arrival_rate=16.71 * 1.1)
    assert r.lambda_star == pytest.approx(16.71, abs=0.01)
    assert r.rho == pytest.approx(1.1, abs=1e-3)
    assert r.fluid_slope_tokens_per_s == pytest.approx(16.71 * 1.1 * 200 - 3342.9, rel=1e-3)
    assert r.stable == "unstable" and r.throughput_optimal
    fig1 = capacity_report(make_policy("orca", 512), bt, 129, 112, arrival_rate=14.0)
    assert fig1.lambda_star == pytest.approx(13.87, abs=0.01)


def test_verdicts_by_policy():
    bt = paper_staircase()
    ok = capacity_report(make_policy("sarathi", 512), bt, 129, 112, arrival_rate=10.0)
    assert ok.stable == "stable" and ok.throughput_optimal
    ft = capacity_report(make_policy("fastertransformer", 512), bt, 129, 112, arrival_rate=10.0)
    assert ft.stable == "unknown" and not ft.throughput_optimal
    assert any("not work-conserving" in v for v in ft.verdict)
    stall = capacity_report(make_policy("vllm", 128), bt, 290, 990, max_prompt=290)
    assert any("no batch can be formed" in v for v in stall.verdict)


def test_best_load_when_b0_does_not_divide_budget():
    bt = paper_staircase()
    best, b = best_token_rate(bt, 600)
    assert b == 512 and best == pytest.approx(512 / bt.load_time(512))
    assert peak_token_rate(bt, 600) < best
    r = capacity_report(make_policy("sarathi", 600), bt, 100, 100)
    assert not r.throughput_optimal and any("not the most efficient" in v for v in r.verdict)


def test_piecewise_linear_best_is_budget():
    bt = PiecewiseLinearBatchTime(c=0.02, a=1e-4, b0=64)
    best, b = best_token_rate(bt, 1000)
    assert b == 1000


def test_vertex_c_region():
    bt = paper_staircase()
    lam = 1 / 0.4675
    theta128 = stability_region_scale(bt, 128, 100, 290 * lam, 990 * lam)
    assert theta128 == pytest.approx(1.0, abs=1e-9)
    # slightly more load is outside the region
    assert stability_region_scale(bt, 128, 100, 290 * lam * 1.01, 990 * lam * 1.01) < 1
    # without k_max the region is Theorem 2's: scale = capacity / offered load
    theta = stability_region_scale(bt, 512, None, 100 * 10, 100 * 10)
    assert theta == pytest.approx(peak_token_rate(bt, 512) / 2000, rel=1e-9)


def test_constant_model_capacity():
    r = capacity_report(make_policy("orca", 5), ConstantBatchTime(1.0), 1, 1)
    assert r.capacity_tokens_per_s == 5 and r.lambda_star == 2.5
