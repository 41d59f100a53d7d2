"""Bisection for the maximum stable rate (llmqueue.lab.bisect)."""

import math

import pytest

from llmqueue.lab.bisect import BisectSpec, search
from llmqueue.lab.verdict import INCONCLUSIVE, STABLE, UNSTABLE


def fake_row(params, boundary, noise_se):
    """A point whose growth rate is (f - boundary) * 1000 tokens/s above the boundary, 0 below."""
    f = params["rate_rel"]
    slope = max(0.0, (f - boundary) * 1000.0)
    hw = 2.262 * noise_se
    return {"slope": slope, "slope_lo": slope - hw, "slope_hi": slope + hw, "slope_se": noise_se,
            "slope_dof": 9, "slope_method": "batch means (10 batches)", "warmup_s": 10.0, "warmup_method": "mser-5",
            "window_s": params["horizon_s"] - 10.0, "throughput_tokens_per_s": 1000.0, "offered_tokens_per_s": 1000.0,
            "confidence": 0.95, "tolerance_tokens_per_s": 10.0, "verdict": "", "verdict_reason": ""}


def drive(spec, boundary, noise=lambda f, h: 2.0):
    calls = []

    def make(f, s, h):
        return {"rate_rel": f, "seed": s, "horizon_s": h}

    gen = search(spec, 10.0, 100.0, make, [1, 2, 3])
    rows = None
    while True:
        try:
            req = gen.send(rows) if rows is not None else next(gen)
        except StopIteration as stop:
            return stop.value, calls
        calls.append(req)
        rows = [fake_row(p, boundary, noise(p["rate_rel"], p["horizon_s"])) for p in req]


def test_brackets_the_boundary():
    res, calls = drive(BisectSpec(low=0.5, high=1.5, resolution=0.01), boundary=0.83)
    assert res.stable_rel <= 0.83 + 0.01 and res.unstable_rel > 0.83   # tolerance 10 tok/s = +0.01
    assert res.unstable_rel / res.stable_rel - 1 <= 0.01
    assert res.upper_kind == UNSTABLE
    assert all(len(c) == 3 for c in calls)                      # three replications per probe
    assert {p["seed"] for c in calls for p in c} == {1, 2, 3}
    # geometric midpoints: the first probe is sqrt(0.5 * 1.5)
    assert calls[0][0]["rate_rel"] == pytest.approx(math.sqrt(0.75))
    assert res.lambda_star == 10.0 and "maximum stable rate in" in res.describe()


def test_inconclusive_probes_escalate_then_count_as_not_stable():
    # near the boundary the noise is too large for any horizon; elsewhere it is small
    res, calls = drive(BisectSpec(low=0.5, high=1.5, resolution=0.01, escalations=2), boundary=1.0,
                       noise=lambda f, h: 1e4 if 0.97 < f < 1.05 else 1.0)
    horizons = sorted({p["horizon_s"] for c in calls for p in c})
    assert horizons == [100.0, 200.0, 400.0]
    assert res.upper_kind == UNSTABLE and 1.05 <= res.unstable_rel <= 1.05 * 1.01
    assert 0.97 / 1.01 <= res.stable_rel <= 0.97
    assert 0.97 < res.undecided_lo <= res.undecided_hi < 1.05
    assert {p.verdict for p in res.probes} == {STABLE, UNSTABLE, INCONCLUSIVE}
    assert "undecided from" in res.describe()


def test_open_ends_are_checked():
    res, _ = drive(BisectSpec(low=0.5, high=1.5, resolution=0.05), boundary=5.0)
    assert res.unstable_rel is None and res.stable_rel == 1.5 and "top of the searched interval" in res.describe()
    res, _ = drive(BisectSpec(low=0.5, high=1.5, resolution=0.05), boundary=0.1)
    assert res.stable_rel is None and res.unstable_rel == 0.5 and "not stable even at" in res.describe()


def test_stalled_points_are_unstable():
    def make(f, s, h):
        return {"rate_rel": f}
    gen = search(BisectSpec(low=0.5, high=1.5, resolution=0.5), 1.0, 10.0, make, [1])
    req = next(gen)
    stalled = {"slope": 5.0, "slope_method": "engine stalls", "verdict_reason": "unstable: the engine can never form"}
    with pytest.raises(StopIteration) as stop:
        while True:
            req = gen.send([stalled for _ in req])
    assert stop.value.value.stable_rel is None


@pytest.mark.parametrize("kw,msg", [({"low": 0, "high": 1}, "0 < low < high"), ({"low": 2, "high": 1},
                                                                                "0 < low < high"),
                                    ({"resolution": 0}, "resolution"), ({"replications": 0}, "replications")])
def test_bad_spec(kw, msg):
    with pytest.raises(ValueError, match=msg):
        BisectSpec(**kw)
