"""The fast simulation core (llmqueue.sim.fast) against the generic engine (issue 7).

Same batches and the same per-request and per-iteration results: integer columns and batch
compositions exactly, times to within 1e-9 relative; the same errors. Random workloads cover
every built-in policy, with and without k_max, budgets 16..512, loads 0.3..1.3 lambda*, the
staircase, piecewise-linear, constant and load-only affine batch times, with and without a
horizon; tiny epochs and input chunks exercise the core's epoch boundaries; a hypothesis
property test searches small workloads. Then streaming to disk, bounded memory, engine
selection, and the benchmark's --quick run.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmqueue.engine import AffineBatchTime, ConstantBatchTime, PiecewiseLinearBatchTime, Request, StaircaseBatchTime
from llmqueue.policies import ClassPriority, SarathiServe, make_policy
from llmqueue.sim import EngineStalled, FastPathUnavailable, simulate, simulate_to_disk
from llmqueue.sim.fast import fast_path_reason, run_core
from llmqueue.sim.fast.itl import weighted_percentiles
from llmqueue.sim.fast.sinks import MemorySink

REL = 1e-9                      # the tolerance on times
POLICIES = ["fastertransformer", "vllm", "orca", "sarathi"]
WHOLE = {"fastertransformer", "vllm"}

MODELS = {
    "staircase": StaircaseBatchTime(c=0.01128, a=0.03547, b0=128),
    "fine-staircase": StaircaseBatchTime(c=0.0, a=0.01, b0=4),
    "piecewise": PiecewiseLinearBatchTime(c=0.01, a=0.0002, b0=32),
    "constant": ConstantBatchTime(0.05),
    "affine-load-only": AffineBatchTime(c=0.01, a_prefill=0.0001, a_decode=0.0001),
}


def workload(seed: int, n: int, budget: int, whole: bool, load: float, model, *, p0: float = 0.15,
             long_decode: bool = False) -> list[Request]:
    """Poisson arrivals at ``load`` x the full-batch token rate; prompts 0..4 budgets (whole
    prefill: <= budget), some prompt-0 and decode-0 requests, a fifth arriving together with the
    previous one, sometimes times rounded so that arrivals fall on iteration boundaries."""
    rng = np.random.default_rng(seed)
    pmax = budget if whole else 4 * budget
    p = np.where(rng.random(n) < p0, 0, rng.integers(1, pmax + 1, n))
    if long_decode:
        d = rng.integers(0, 400, n)
    else:
        d = np.where(rng.random(n) < 0.15, 0, rng.geometric(1 / 20, n))
    d = np.where(p + d == 0, 1, d)
    rate = load * budget / model.load_time(budget) / float(np.mean(p + d))
    t = np.cumsum(rng.exponential(1 / rate, n))
    same = rng.random(n) < 0.2
    same[0] = False
    for i in np.flatnonzero(same):
        t[i] = t[i - 1]
    if seed % 3 == 0:
        t = np.round(t, 1)
    return [Request(int(i), float(t[i]), int(p[i]), int(d[i])) for i in range(n)]


def both(policy, model, reqs, horizon=None, **tuning):
    """(generic result, fast result), or the two exceptions when the generic engine raises."""
    try:
        gen = simulate(policy, model, reqs, horizon=horizon, record_composition=True, engine="generic")
    except Exception as e:  # noqa: BLE001 - the fast core must raise the same
        with pytest.raises(type(e)) as got:
            run_core(policy, model, reqs, MemorySink(), horizon=horizon, **tuning)
        assert str(got.value) == str(e)
        return None, None
    if tuning:
        from llmqueue.sim.fast.run import simulate_fast
        fast = simulate_fast(policy, model, reqs, horizon=horizon, record_composition=True, **tuning)
    else:
        fast = simulate(policy, model, reqs, horizon=horizon, record_composition=True, engine="fast")
    return gen, fast


def _close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: NaN in different places"
    ok = ~np.isnan(a)
    np.testing.assert_allclose(b[ok], a[ok], rtol=REL, atol=0, err_msg=what)


def assert_same(gen, fast) -> None:
    if gen is None:
        return
    gi, fi = gen.iterations, fast.iterations
    assert list(gi.columns) == list(fi.columns) and len(gi) == len(fi)
    for c in gi.columns:
        if c.endswith("time"):
            _close(gi[c], fi[c], f"iterations.{c}")
        else:
            assert np.array_equal(gi[c].to_numpy(), fi[c].to_numpy()), f"iterations.{c}"
    assert gen.compositions == fast.compositions
    gr, fr = gen.requests, fast.requests
    assert list(gr.columns) == list(fr.columns) and len(gr) == len(fr)
    for c in ("request_id", "prompt_tokens", "decode_tokens"):
        assert np.array_equal(gr[c].to_numpy(), fr[c].to_numpy()), f"requests.{c}"
    for c in ("arrival_time", "prefill_end_time", "first_token_time", "completion_time"):
        if len(gr):
            _close(gr[c], fr[c], f"requests.{c}")
    # ITL: the same multiset (the fast core does not keep the generic engine's order)
    assert len(gen.itl) == len(fast.itl)
    np.testing.assert_allclose(np.sort(fast.itl), np.sort(gen.itl), rtol=0,
                               atol=REL * max(1.0, gen.end_time))
    assert math.isclose(fast.end_time, gen.end_time, rel_tol=REL)
    assert (fast.tokens_arrived, fast.tokens_processed, fast.tokens_left) == \
        (gen.tokens_arrived, gen.tokens_processed, gen.tokens_left)
    assert fast.labels == gen.labels


# ---------------------------------------------------------------------------------------------
# Random workloads: every policy, k_max, budgets, loads, batch-time models, horizons

# (budget, k_max, model, load, n, horizon as a fraction of the last arrival or None)
CONFIGS = [
    (16, None, "staircase", 0.3, 250, None),
    (64, 3, "fine-staircase", 0.7, 250, 0.5),
    (128, None, "piecewise", 0.95, 300, None),
    (128, 8, "constant", 1.1, 250, 0.7),
    (512, None, "staircase", 1.3, 300, 0.6),
    (512, 8, "affine-load-only", 0.5, 250, None),
    (32, 3, "staircase", 1.3, 200, None),
    (256, None, "constant", 0.9, 250, 1.0),
]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"b{c[0]}-k{c[1]}-{c[2]}-load{c[3]}-h{c[5]}")
def test_random_workloads_match_generic(policy, cfg):
    budget, kmax, model_name, load, n, hfrac = cfg
    model = MODELS[model_name]
    seed = CONFIGS.index(cfg) * 10 + POLICIES.index(policy)
    if policy == "fastertransformer":
        n //= 2          # decode priority: the backlog builds, and each batch is small
    reqs = workload(seed, n, budget, policy in WHOLE, load, model)
    horizon = None if hfrac is None else reqs[-1].arrival_time * hfrac + 0.0123
    assert_same(*both(make_policy(policy, budget, kmax), model, reqs, horizon))


@pytest.mark.parametrize("policy", POLICIES)
def test_epoch_and_chunk_boundaries_match_generic(policy):
    """Tiny epochs, input chunks and trims: every boundary of the core's bookkeeping is crossed
    many times in one run."""
    rng = np.random.default_rng(POLICIES.index(policy))
    for trial in range(6):
        budget = int(rng.choice([16, 64, 200]))
        kmax = [None, 2, 5][trial % 3]
        model = list(MODELS.values())[trial % len(MODELS)]
        reqs = workload(100 + trial, 200, budget, policy in WHOLE, float(rng.choice([0.5, 1.2])), model,
                        p0=0.4, long_decode=trial % 2 == 1)
        horizon = None if trial % 2 else reqs[150].arrival_time
        tuning = dict(chunk_requests=int(rng.integers(1, 9)), epoch_iterations=int(rng.integers(1, 12)),
                      trim_min=int(rng.integers(0, 5)))
        assert_same(*both(make_policy(policy, budget, kmax), model, reqs, horizon, **tuning))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.tuples(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0, 2.5]), st.integers(0, 12),
                               st.integers(0, 12)), min_size=1, max_size=25),
       policy=st.sampled_from(POLICIES), budget=st.integers(1, 12), kmax=st.sampled_from([None, 1, 2, 3]),
       horizon=st.sampled_from([None, 0.5, 1.0, 3.0, 7.7]), tiny=st.booleans())
def test_property_small_workloads_match_generic(rows, policy, budget, kmax, horizon, tiny):
    t, reqs = 0.0, []
    for i, (gap, p, d) in enumerate(rows):
        t += gap
        reqs.append(Request(i, t, p, d if p + d else 1))
    tuning = dict(chunk_requests=2, epoch_iterations=3, trim_min=0) if tiny else {}
    assert_same(*both(make_policy(policy, budget, kmax), ConstantBatchTime(1.0), reqs, horizon, **tuning))


def test_fig8_batches_on_the_fast_core():
    """The spec's worked example (paper Fig. 8), batch by batch."""
    fig8 = [Request(0, 0.0, 0, 2, label="A"), Request(1, 0.0, 0, 4, label="B"),
            Request(2, 0.0, 0, 3, label="C"), Request(3, 0.5, 1, 1, label="D"),
            Request(4, 0.5, 1, 1, label="E")]
    want = {("vllm", 4): "[Ad Bd Cd] [Dp Ep] [Ad Bd Cd Dd] [Bd Cd Ed] [Bd]",
            ("orca", 5): "[Ad Bd Cd] [Ad Bd Cd Dp Ep] [Bd Cd Dd Ed] [Bd]",
            ("fastertransformer", 4): "[Ad Bd Cd] [Ad Bd Cd] [Bd Cd] [Bd] [Dp Ep] [Dd Ed]",
            ("sarathi", 4): "[Ad Bd Cd] [Ad Bd Cd Dp] [Bd Cd Dd Ep] [Bd Ed]"}
    for (name, budget), text in want.items():
        res = simulate(make_policy(name, budget), ConstantBatchTime(1.0), fig8, record_composition=True,
                       engine="fast")
        got = [{"ABCDE"[r] + "p" for r, _ in p.prefill} | {"ABCDE"[r] + "d" for r in p.decode}
               for p in res.compositions]
        assert got == [set(b.split()) for b in text.replace("]", "").split("[")[1:]]
        assert res.iterations["start_time"].tolist() == [float(i) for i in range(len(got))]


def test_hard_paths_are_exercised(monkeypatch):
    """The truncated regime (budget or k_max binding on decodes, decoders arriving out of FCFS
    order) and long runs of identical iterations (timed with numpy) are really taken."""
    import llmqueue.sim.fast.core as core

    calls = {"adjust": 0, "long_run": 0}
    adjust, run_times = core.adjust, core._run_times

    def spy_adjust(*a):
        calls["adjust"] += 1
        return adjust(*a)

    def spy_times(t0, dt, kl, ta, horizon):
        ts = run_times(t0, dt, kl, ta, horizon)
        calls["long_run"] += ts.size > core._SHORT_RUN
        return ts

    monkeypatch.setattr(core, "adjust", spy_adjust)
    monkeypatch.setattr(core, "_run_times", spy_times)
    model = ConstantBatchTime(0.01)
    for policy in POLICIES:
        reqs = workload(7, 200, 16, policy in WHOLE, 1.2, model, p0=0.6)
        assert_same(*both(make_policy(policy, 16, 4), model, reqs))
        sparse = [Request(0, 0.0, 10, 3000), Request(1, 3.3, 0, 900), Request(2, 3.3, 0, 900),
                  Request(3, 70.0, 12, 10)]
        assert_same(*both(make_policy(policy, 16, None), model, sparse))
        assert_same(*both(make_policy(policy, 16, 2), model, sparse, 40.0))
    assert calls["adjust"] > 100 and calls["long_run"] > 4


# ---------------------------------------------------------------------------------------------
# Errors

@pytest.mark.parametrize("policy", ["fastertransformer", "vllm"])
def test_stall_raises_like_the_generic_engine(policy):
    model = ConstantBatchTime(1.0)
    cases = [[Request(0, 0.0, 4, 1), Request(1, 0.0, 9, 1), Request(2, 0.5, 1, 1)],
             [Request(0, 0.0, 0, 5), Request(1, 0.0, 3, 2), Request(2, 1.0, 20, 1), Request(3, 1.5, 0, 2)]]
    for reqs in cases:
        for kmax in (None, 1):
            with pytest.raises(EngineStalled) as gen:
                simulate(make_policy(policy, 8, kmax), model, reqs, engine="generic")
            with pytest.raises(EngineStalled) as fast:
                simulate(make_policy(policy, 8, kmax), model, reqs, engine="fast")
            assert str(fast.value) == str(gen.value)


@pytest.mark.parametrize("horizon", [None, 0.7, 2.5])
def test_unsorted_input_raises_like_the_generic_engine(horizon):
    reqs = [Request(0, 0.0, 4, 1), Request(1, 1.0, 3, 1), Request(2, 0.5, 1, 1)]
    for policy in POLICIES:
        assert_same(*both(make_policy(policy, 8), ConstantBatchTime(1.0), reqs, horizon))


def test_engine_selection():
    reqs = workload(3, 50, 64, False, 0.8, MODELS["staircase"])
    sarathi = make_policy("sarathi", 64)

    class MySarathi(SarathiServe):
        pass

    context = AffineBatchTime(c=0.01, a_prefill=0.0001, a_decode=0.0002, a_context=1e-6)
    prio = ClassPriority(token_budget=64, inner=sarathi, class_order=("default",))
    assert fast_path_reason(sarathi, MODELS["staircase"]) is None
    for pol, model in [(prio, MODELS["staircase"]), (MySarathi(token_budget=64), MODELS["staircase"]),
                       (sarathi, context)]:
        assert fast_path_reason(pol, model) is not None
        with pytest.raises(FastPathUnavailable, match="engine='generic'"):
            simulate(pol, model, reqs, engine="fast")
        auto = simulate(pol, model, reqs)                          # falls back to the generic engine
        gen = simulate(pol, model, reqs, engine="generic")
        pd.testing.assert_frame_equal(auto.requests, gen.requests)
    with pytest.raises(ValueError, match="engine must be"):
        simulate(sarathi, MODELS["staircase"], reqs, engine="turbo")


# ---------------------------------------------------------------------------------------------
# Streaming to disk

@pytest.mark.parametrize("policy,fmt,engine", [("sarathi", "parquet", "fast"), ("vllm", "csv", "fast"),
                                               ("orca", "parquet", "generic")])
def test_streamed_run_matches_in_memory(tmp_path, policy, fmt, engine):
    model = MODELS["staircase"]
    reqs = workload(21, 400, 128, policy in WHOLE, 0.9, model)
    horizon = reqs[300].arrival_time
    mem = simulate(make_policy(policy, 128, 8), model, reqs, horizon=horizon, engine="generic")
    tuning = dict(chunk_requests=17, epoch_iterations=23, trim_min=3) if engine == "fast" else {}
    disk = simulate_to_disk(make_policy(policy, 128, 8), model, reqs, tmp_path, horizon=horizon,
                            engine=engine, fmt=fmt, backlog_resolution_s=0.5, **tuning)
    assert disk.engine == engine
    a, b = mem.summary().to_dict(), disk.summary().to_dict()
    assert a.keys() == b.keys()
    for k, v in a.items():
        if isinstance(v, float) and b[k] is not None:
            assert math.isclose(b[k], v, rel_tol=REL, abs_tol=1e-12), k
        else:
            assert b[k] == v, k
    req = disk.read_requests()
    for c in mem.requests.columns:
        _close(mem.requests[c], req[c], c)
    it = disk.read_iterations()
    for c in mem.iterations.columns:
        _close(mem.iterations[c], it[c], c)
    # the backlog series: first boundary, largest backlog and iteration count per 0.5 s bin
    bins = np.floor(mem.iterations["start_time"] / 0.5).astype(int)
    g = mem.iterations.groupby(bins)
    bl = disk.backlog
    assert np.allclose(bl["time"], g.size().index * 0.5)
    assert bl["backlog_tokens"].tolist() == g["backlog_tokens"].first().tolist()
    assert bl["max_backlog_tokens"].tolist() == g["backlog_tokens"].max().tolist()
    assert bl["num_in_system"].tolist() == g["num_in_system"].first().tolist()
    assert bl["iterations"].tolist() == g.size().tolist()
    assert (tmp_path / "summary.json").exists() and (tmp_path / f"backlog.{fmt}").exists()


def test_memory_stays_bounded_on_a_long_stable_run(monkeypatch, tmp_path):
    """The core drops the columns of finished requests: on a stable run its window of request
    columns stays near the number of requests in the system, not the length of the run."""
    import llmqueue.sim.fast.run as run

    widest = []
    trim = run.trim_memory

    def spy(S, F, min_drop):
        trim(S, F, min_drop)
        widest.append(F.loaded - F.abase)

    monkeypatch.setattr(run, "trim_memory", spy)
    model = MODELS["staircase"]
    reqs = (r for r in workload(5, 20000, 512, False, 0.8, model))
    res = simulate_to_disk(make_policy("sarathi", 512), model, reqs, tmp_path, write_iterations=False,
                           chunk_requests=500, epoch_iterations=500, trim_min=200)
    assert res.completed == 20000 and res.iterations_path is None
    assert max(widest) < 2000


def test_weighted_percentiles_are_numpy_percentiles():
    rng = np.random.default_rng(0)
    for _ in range(300):
        v = np.unique(rng.random(int(rng.integers(1, 20))) * 10.0 ** int(rng.integers(-3, 3)))
        c = rng.integers(1, 30, v.size)
        qs = [0, 37.5, 50, 90, 99, 100]
        assert weighted_percentiles(v, c, qs) == np.percentile(np.repeat(v, c), qs).tolist()


def test_benchmark_quick_runs(repo_root):
    out = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "sim_speed.py"), "--quick"],
                         capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "speed-up" in lines[0] and len(lines) == 6
    assert all(line.split()[0] in ("sarathi", "vllm") for line in lines[2:])
