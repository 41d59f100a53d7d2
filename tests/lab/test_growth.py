"""Growth-rate estimation, warm-up choice and verdicts (llmqueue.lab)."""

import math

import numpy as np
import pytest

from llmqueue import make_policy, paper_staircase, simulate
from llmqueue.analysis import capacity_report
from llmqueue.lab.growth import combine, estimate_run
from llmqueue.lab.paths import RunPath
from llmqueue.lab.verdict import INCONCLUSIVE, STABLE, UNSTABLE, compare_fluid, decide, tolerance_tokens
from llmqueue.lab.warmup import mser5
from llmqueue.workload import Fixed, PoissonArrivals, Workload

LAM = capacity_report(make_policy("sarathi", 512), paper_staircase(), 100, 100).lambda_star


def run(frac, horizon, seed=1, policy="sarathi"):
    wl = Workload(arrival=PoissonArrivals(frac * LAM), prompt_tokens=Fixed(100), decode_tokens=Fixed(100),
                  duration_s=horizon)
    return simulate(make_policy(policy, 512), paper_staircase(), wl.requests(seed), horizon=horizon)


@pytest.fixture(scope="module")
def stable_run():
    return run(0.8, 600.0)


@pytest.fixture(scope="module")
def overloaded_run():
    return run(1.2, 400.0)


def test_path_matches_the_iteration_log(stable_run):
    """The rebuilt backlog and number in system equal what the engine logged at every start."""
    res = stable_run
    path = RunPath.from_result(res, 600.0)
    it = res.iterations
    assert np.array_equal(path.backlog(it["start_time"].to_numpy()), it["backlog_tokens"].to_numpy())
    assert np.array_equal(path.in_system(it["start_time"].to_numpy()), it["num_in_system"].to_numpy())
    assert int(path.backlog(600.0)) == res.tokens_left


def test_path_drops_to_zero_when_idle():
    """Between the last batch and the next arrival the system is empty (the log cannot show it)."""
    wl = Workload(arrival=PoissonArrivals(1.0), prompt_tokens=Fixed(10), decode_tokens=Fixed(2), duration_s=30)
    res = simulate(make_policy("sarathi", 512), paper_staircase(), wl.requests(3), horizon=30.0)
    path = RunPath.from_result(res, 30.0)
    it = res.iterations
    idle_starts = it["end_time"].to_numpy()[:-1][np.diff(it["start_time"].to_numpy()) > 1.0]
    assert len(idle_starts) > 0
    assert (path.backlog(idle_starts) == 0).all()


def test_mser_finds_a_transient_and_caps_a_trend():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 100, 2001)
    level = np.where(t < 20, 50.0 * (20 - t), 0.0) + rng.normal(0, 5, t.size)
    w = mser5(t, level)
    assert 15 <= w.time_s <= 25 and not w.capped
    trend = 3.0 * t + rng.normal(0, 5, t.size)
    w = mser5(t, trend)
    assert w.capped and w.time_s == pytest.approx(50, abs=0.5)
    with pytest.raises(ValueError, match="at least 20"):
        mser5(t[:10], trend[:10])


def test_stable_run_verdict_and_fluid(stable_run):
    path = RunPath.from_result(stable_run, 600.0)
    est = estimate_run(path)
    assert est.warmup_method == "mser-5" and 0 < est.warmup_s < 300
    assert est.lo <= 0 <= est.hi
    tol = tolerance_tokens(0.8 * LAM * 200)
    v = decide(est, tol, 600.0)
    assert v.verdict == STABLE and "stable: the backlog grows at" in v.reason
    assert compare_fluid(est, 0.8 * LAM * 200 - 200 * LAM).in_ci


def test_overloaded_run_verdict_and_fluid(overloaded_run):
    path = RunPath.from_result(overloaded_run, 400.0)
    est = estimate_run(path)
    assert est.warmup_method.endswith("(capped at half the run)")
    fluid = 1.2 * LAM * 200 - 200 * LAM
    fc = compare_fluid(est, fluid)
    assert fc.in_ci and fc.fluid_line == pytest.approx(fluid)
    v = decide(est, tolerance_tokens(1.2 * LAM * 200), 400.0)
    assert v.verdict == UNSTABLE and "not processed" in v.reason
    # the slope is the net input: offered minus processed tokens per second
    assert est.slope == pytest.approx(est.offered - est.throughput, rel=1e-9)


def test_inconclusive_says_what_would_decide(stable_run):
    est = estimate_run(RunPath.from_result(stable_run, 600.0))
    tol = est.slope + 0.5 * est.half_width        # a tolerance inside the interval
    v = decide(est, tol, 600.0)
    assert v.verdict == INCONCLUSIVE
    assert v.needed_horizon_s > 600.0 and v.needed_replications >= 2
    assert "would decide it" in v.reason
    v = decide(est, est.slope, 600.0)            # exactly on the tolerance: no advice
    assert v.verdict == INCONCLUSIVE and v.needed_horizon_s is None and "change the tolerance" in v.reason


def test_fixed_warmup_and_bad_arguments(stable_run):
    path = RunPath.from_result(stable_run, 600.0)
    est = estimate_run(path, warmup=100.0)
    assert est.warmup_s == 100.0 and est.warmup_method == "fixed" and est.window_s == 500.0
    for bad in (-1.0, 600.0):
        with pytest.raises(ValueError, match="warm-up must be in"):
            estimate_run(path, warmup=bad)
    with pytest.raises(ValueError, match="batches"):
        estimate_run(path, batches=1)
    with pytest.raises(ValueError, match="tolerance"):
        tolerance_tokens(100.0, 1.5)


def test_combine_pools_batches(stable_run):
    path = RunPath.from_result(stable_run, 600.0)
    e1 = estimate_run(path)
    e2 = estimate_run(path, warmup=200.0)
    pooled = combine([e1, e2])
    assert pooled.slope == pytest.approx((e1.slope + e2.slope) / 2)
    assert pooled.std_error == pytest.approx(math.sqrt(e1.std_error ** 2 + e2.std_error ** 2) / 2)
    assert pooled.replications == 2 and pooled.dof <= e1.dof + e2.dof
    assert combine([e1]) is e1
    with pytest.raises(ValueError):
        combine([])


def test_same_seed_same_estimate():
    a = estimate_run(RunPath.from_result(run(0.9, 200.0, seed=5), 200.0))
    b = estimate_run(RunPath.from_result(run(0.9, 200.0, seed=5), 200.0))
    assert a == b
