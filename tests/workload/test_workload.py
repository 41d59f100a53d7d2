"""Arrival processes, length distributions and Workload: moments, validation, determinism.

Statistical checks use a fixed seed and a tolerance of 5 standard errors, the standard errors
estimated from the sample itself (batch means for the CV^2), so a correct implementation
passes with overwhelming probability for any seed.
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from scipy.special import ndtr

from llmqueue.engine.request import Request
from llmqueue.workload import (
    DeterministicArrivals,
    Empirical,
    Fixed,
    GammaArrivals,
    Geometric,
    LogNormal,
    PoissonArrivals,
    TraceError,
    Uniform,
    Workload,
)

N = 200_000


def gaps(process, seed=0, n=N):
    t = np.fromiter(islice(process.times(np.random.default_rng(seed)), n), dtype=float)
    assert t[0] > 0 and np.all(np.diff(t) >= 0)
    return np.diff(t, prepend=0.0)


@pytest.mark.parametrize("process", [PoissonArrivals(4.0), GammaArrivals(4.0, 0.25), GammaArrivals(2.0, 1.0),
                                     GammaArrivals(10.0, 5.0)])
def test_renewal_mean_gap_and_cv2(process):
    g = gaps(process)
    assert abs(g.mean() - 1 / process.mean_rate) < 5 * g.std() / np.sqrt(g.size)
    cv2 = g.var() / g.mean() ** 2
    batches = g.reshape(200, -1)
    batch_cv2 = batches.var(axis=1) / batches.mean(axis=1) ** 2
    assert abs(cv2 - process.cv2) < 5 * batch_cv2.std() / np.sqrt(len(batch_cv2))


def test_gamma_cv2_is_inverse_burstiness():
    assert GammaArrivals(3.0, 0.5).cv2 == 2.0 and GammaArrivals(3.0).cv2 == 1.0


def test_deterministic_arrivals_are_exact_multiples():
    t = list(islice(DeterministicArrivals(3.0).times(np.random.default_rng(0)), 1_000_000))
    assert t[:4] == [1 / 3, 2 / 3, 1.0, 4 / 3]
    assert t[-1] == 1_000_000 / 3
    assert DeterministicArrivals(3.0).cv2 == 0.0


def test_arrival_times_depend_only_on_generator_state():
    a = list(islice(PoissonArrivals(1.0).times(np.random.default_rng(5)), 10_000))
    b = list(islice(PoissonArrivals(1.0).times(np.random.default_rng(5)), 10_000))
    assert a == b


@pytest.mark.parametrize("make", [
    lambda: PoissonArrivals(-1.0), lambda: PoissonArrivals(0), lambda: DeterministicArrivals(float("inf")),
    lambda: GammaArrivals(float("nan"), 1), lambda: PoissonArrivals("fast")])
def test_bad_rate(make):
    with pytest.raises(ValueError, match="arrival rate must be .*> 0 requests/s"):
        make()


def test_bad_burstiness():
    with pytest.raises(ValueError, match="burstiness must be a finite number > 0, got 0"):
        GammaArrivals(1.0, 0)


DISTS = [Fixed(7), Fixed(0), Uniform(3, 10), Uniform(5, 5), Geometric(20.0), Geometric(1), LogNormal(100, 1.0),
         LogNormal(2, 1.0), LogNormal(100, 1.5, min=1, max=500), LogNormal(50, 1.0, min=20, max=60),
         Empirical([1, 5, 100]), Empirical([1, 5, 100], weights=[3, 0, 1])]


@pytest.mark.parametrize("dist", DISTS, ids=repr)
def test_length_mean_and_range(dist):
    x = dist.sample(np.random.default_rng(1), N)
    assert x.dtype == np.int64 and x.shape == (N,)
    assert x.min() >= dist.min_value and (dist.max_value is None or x.max() <= dist.max_value)
    assert abs(x.mean() - dist.mean) <= 5 * x.std() / np.sqrt(N) + 1e-12


def test_lognormal_mean_is_that_of_rounded_clipped_values():
    d = LogNormal(2, 1.0)  # rounding and clipping at 1 raise the mean well above 2
    assert d.underlying_mean == 2.0 and abs(d.mean - 2.1746) < 1e-4
    assert LogNormal(2.5, 0).mean == 2.0 and LogNormal(2.5, 0, min=3).mean == 3.0
    # tail formula (range too wide to sum): rounding barely moves the mean of a wide lognormal
    assert abs(LogNormal(1e5, 2.0, min=0).mean - 1e5) < 1e-3


def test_lognormal_mean_tail_formula_matches_brute_force_sum():
    d = LogNormal(1e4, 2.0, min=0, max=3_000_000)  # more integers than summed exactly: tail formula
    k = np.arange(0, d.max, dtype=float)
    exact = float(np.sum(ndtr((d.mu - np.log(k + 0.5)) / d.sigma)))
    assert abs(d.mean - exact) < 1e-6 * exact


@pytest.mark.parametrize("make, msg", [
    (lambda: Fixed(-1), "Fixed.value must be a non-negative integer"),
    (lambda: Fixed(2.5), "Fixed.value must be a non-negative integer"),
    (lambda: Uniform(5, 3), "low <= high"),
    (lambda: Geometric(0.5), "Geometric.mean must be a finite number >= 1"),
    (lambda: LogNormal(0, 1), "LogNormal.mean must be"),
    (lambda: LogNormal(10, -1), "LogNormal.sigma must be"),
    (lambda: LogNormal(10, 1, min=5, max=3), "min <= max"),
    (lambda: Empirical([]), "at least one value"),
    (lambda: Empirical([1, -2]), "Empirical value must be a non-negative integer"),
    (lambda: Empirical([1, 2], weights=[1]), "one weight per value"),
    (lambda: Empirical([1, 2], weights=[0, 0]), "not all 0"),
])
def test_length_validation(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_empirical_from_files(tmp_path):
    text = tmp_path / "lengths.txt"
    text.write_text("3\n5\n\n7\n")
    assert Empirical.from_file(text).values == (3, 5, 7)
    table = tmp_path / "t.csv"
    table.write_text("arrival_time,prompt_tokens,decode_tokens\n0.5,10,2\n1.0,20,3\n")
    assert Empirical.from_file(table, column="prompt_tokens").values == (10, 20)
    with pytest.raises(TraceError, match=r"t.csv:1: no column 'ContextTokens'"):
        Empirical.from_file(table, column="ContextTokens")
    with pytest.raises(TraceError, match=r"t.csv:1:2: expected one number per line.*pass column="):
        Empirical.from_file(table)
    text.write_text("3\nx\n")
    with pytest.raises(TraceError, match=r"lengths.txt:2:1: expected a non-negative integer, got 'x'"):
        Empirical.from_file(text)


def poisson_workload(**kw):
    kw.setdefault("num_requests", 500)
    prompt, decode = kw.pop("prompt", LogNormal(200, 1.0)), kw.pop("decode", Geometric(50))
    return Workload(PoissonArrivals(5.0), prompt, decode, **kw)


def test_same_seed_same_requests_different_seed_different():
    w = poisson_workload()
    assert list(w.requests(42)) == list(w.requests(42))
    ss = np.random.SeedSequence(7)
    assert list(w.requests(ss)) == list(w.requests(ss)) == list(w.requests(7))
    assert list(w.requests(42)) != list(w.requests(43))


def test_streams_are_independent():
    a = list(poisson_workload().requests(1))
    b = list(poisson_workload(decode=Uniform(1, 9)).requests(1))
    assert [(r.arrival_time, r.prompt_tokens) for r in a] == [(r.arrival_time, r.prompt_tokens) for r in b]


def test_initial_requests_come_first_with_ids_from_zero():
    w = poisson_workload(initial=((0, 2, "A"), (0, 4, "B"), (0, 3)), job_class="chat")
    reqs = list(w.requests(0))
    assert reqs[:3] == [Request(0, 0.0, 0, 2, "chat", "A"), Request(1, 0.0, 0, 4, "chat", "B"),
                        Request(2, 0.0, 0, 3, "chat", None)]
    assert [r.request_id for r in reqs] == list(range(503))
    assert all(a.arrival_time <= b.arrival_time for a, b in zip(reqs, reqs[1:]))
    assert {r.job_class for r in reqs} == {"chat"}


def test_stopping_rules():
    assert len(list(poisson_workload(num_requests=100).requests(0))) == 100
    by_time = list(poisson_workload(num_requests=None, duration_s=20.0).requests(0))
    assert by_time[-1].arrival_time <= 20.0 and 50 < len(by_time) < 150
    assert len(list(poisson_workload(num_requests=10, duration_s=1e6).requests(0))) == 10
    assert list(poisson_workload(num_requests=1000, duration_s=20.0).requests(0)) == by_time
    assert list(poisson_workload(num_requests=0).requests(0)) == []


def test_trace_replay_fig8():
    trace = [Request(0, 0.5, 1, 1, label="D"), Request(1, 0.5, 1, 1, label="E")]
    w = Workload(trace=trace, initial=((0, 2, "A"), (0, 4, "B"), (0, 3, "C")))
    assert [(r.request_id, r.name, r.arrival_time) for r in w.requests(0)] == [
        (0, "A", 0.0), (1, "B", 0.0), (2, "C", 0.0), (3, "D", 0.5), (4, "E", 0.5)]
    assert w.mean_prompt_tokens == 1.0 and w.mean_decode_tokens == 1.0  # initial ones excluded
    assert w.arrival_rate == float("inf") and w.max_prompt_tokens == 1


def test_trace_properties_and_truncation():
    trace = [Request(i, 2.0 * i, 10 * (i + 1), 5) for i in range(6)]
    w = Workload(trace=trace)
    assert w.arrival_rate == 0.5 and w.mean_prompt_tokens == 35.0 and w.max_prompt_tokens == 60
    short = Workload(trace=trace, duration_s=4.0)
    assert [r.request_id for r in short.requests(0)] == [0, 1, 2] and short.mean_prompt_tokens == 20.0
    assert len(list(Workload(trace=trace, num_requests=2).requests(0))) == 2


def test_generated_properties():
    w = poisson_workload(prompt=Uniform(10, 30), decode=Fixed(4))
    assert (w.arrival_rate, w.mean_prompt_tokens, w.mean_decode_tokens) == (5.0, 20.0, 4.0)
    assert w.max_prompt_tokens == 30
    assert poisson_workload(prompt=Geometric(10)).max_prompt_tokens is None
    only = Workload(initial=((0, 3, "A"),))
    assert (only.arrival_rate, only.mean_prompt_tokens, only.max_prompt_tokens) == (0.0, 0.0, 0)


@pytest.mark.parametrize("make, msg", [
    (lambda: Workload(PoissonArrivals(1.0), Fixed(1), Fixed(1)), "give num_requests or duration_s"),
    (lambda: Workload(PoissonArrivals(1.0), Fixed(1), num_requests=3), "needs prompt_tokens and decode_tokens"),
    (lambda: Workload(PoissonArrivals(1.0), Fixed(0), Uniform(0, 3), num_requests=3), "both be 0"),
    (lambda: Workload(), "empty workload"),
    (lambda: Workload(initial=((0, 0),)), "no tokens"),
    (lambda: Workload(initial=((1,),)), "expected \\(prompt_tokens, decode_tokens"),
    (lambda: Workload(trace=[Request(0, 2.0, 1, 1), Request(1, 1.0, 1, 1)]), "not sorted"),
    (lambda: poisson_workload(num_requests=-1), "num_requests must be"),
    (lambda: poisson_workload(duration_s=float("nan")), "duration_s must be"),
])
def test_workload_validation(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()
