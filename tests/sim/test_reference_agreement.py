"""The naive reference simulator (tests/sim/reference_sim.py) against the spec, then the project's
simulator against the reference: per-request times and every iteration must agree exactly."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from reference_sim import reference_simulate

# --------------------------------------------------------------------------------------------
# The reference against the spec's worked example (paper Fig. 8, spec section 3)

FIG8 = [(0, 0.0, 0, 2), (1, 0.0, 0, 4), (2, 0.0, 0, 3), (3, 0.5, 1, 1), (4, 0.5, 1, 1)]
NAMES = "ABCDE"
FIG8_BATCHES = {
    ("vllm", 4): "[Ad Bd Cd] [Dp Ep] [Ad Bd Cd Dd] [Bd Cd Ed] [Bd]",
    ("orca", 5): "[Ad Bd Cd] [Ad Bd Cd Dp Ep] [Bd Cd Dd Ed] [Bd]",
    ("fastertransformer", 4): "[Ad Bd Cd] [Ad Bd Cd] [Bd Cd] [Bd] [Dp Ep] [Dd Ed]",
    ("sarathi", 4): "[Ad Bd Cd] [Ad Bd Cd Dp] [Bd Cd Dd Ep] [Bd Ed]",
}


def _unit(p, d, c):
    return 1.0


def _as_sets(text):
    return [set(b.split()) for b in text.replace("]", "").split("[")[1:]]


@pytest.mark.parametrize("policy,budget", list(FIG8_BATCHES))
def test_reference_fig8(policy, budget):
    req, it = reference_simulate(policy, budget, None, _unit, FIG8)
    got = [{NAMES[r] + k for r, k, _ in row[5]} for row in it]
    assert got == _as_sets(FIG8_BATCHES[(policy, budget)])
    assert [(row[0], row[1]) for row in it] == [(float(i), float(i + 1)) for i in range(len(it))]
    # composition is in FCFS order, and its counts match the row
    for _start, _end, p, d, k, comp in it:
        assert [r for r, _, _ in comp] == sorted(r for r, _, _ in comp)
        assert p == sum(n for _, kind, n in comp if kind == "p")
        assert d == sum(1 for _, kind, _ in comp if kind == "d")
        assert k == len(comp)
    # A, B, C have no prompt: prefill ends at arrival; each request finishes with its last batch
    for rid, (arr, pend, ftok, comp) in req.items():
        last = max(i for i, row in enumerate(it) if any(r == rid for r, _, _ in row[5]))
        assert comp == it[last][1]
        if rid < 3:
            assert pend == arr == 0.0 and ftok == 1.0


def test_reference_edge_cases():
    # decode 0: no output token, completes at prefill end; arrival exactly at a boundary is seen
    reqs = [(0, 0.0, 3, 0), (1, 1.0, 2, 2), (2, 5.0, 0, 1), (3, 5.0, 1, 1)]
    req, it = reference_simulate("sarathi", 4, None, _unit, reqs)
    assert req[0] == (0.0, 1.0, None, 1.0)
    assert it[1][0] == 1.0 and it[1][5] == ((1, "p", 2),)
    assert req[1] == (1.0, 2.0, 3.0, 4.0)
    # idle from 4.0 to the next arrival at 5.0; same arrival time: FCFS ties in input order
    assert it[4][0] == 5.0 and it[4][5] == ((2, "d", 1), (3, "p", 1))
    assert req[2] == (5.0, 5.0, 6.0, 6.0)
    # k_max counts requests: the loop that meets it stops
    req, it = reference_simulate("orca", 100, 2, _unit, [(i, 0.0, 1, 1) for i in range(3)])
    # orca: prefill of 2 first (one slot left), then one decode
    assert [row[5] for row in it][:2] == [((0, "p", 1), (1, "p", 1)), ((0, "d", 1), (2, "p", 1))]


def test_reference_context_tokens():
    seen = []

    def bt(p, d, c):
        seen.append((p, d, c))
        return 1.0

    reference_simulate("orca", 4, None, bt, [(0, 0.0, 6, 2), (1, 0.0, 0, 3)])
    # it1: 0 gets 4 prompt tokens (ctx 4); it2: 0 gets 2 (ctx 6), 1 decodes (ctx 1);
    # it3: 0 decodes (ctx 7), 1 decodes (ctx 2); it4: 0 (ctx 8), 1 (ctx 3)
    assert seen == [(4, 0, 4), (2, 1, 7), (0, 2, 9), (0, 2, 11)]


def test_reference_stalls_when_head_prompt_exceeds_budget():
    for policy in ("vllm", "fastertransformer"):
        with pytest.raises(RuntimeError, match="stalled"):
            reference_simulate(policy, 8, None, _unit, [(0, 0.0, 4, 1), (1, 0.0, 9, 1)])


# --------------------------------------------------------------------------------------------
# Random traces

def make_trace(seed, n, budget, whole_prefill, load, tokens_per_s, shuffle_ids=False):
    """Poisson arrivals at ``load`` times the token capacity; mixed prompt/decode lengths with
    some zeros; a fifth of the arrivals share a time stamp with the one before. Request ids
    increase along the list unless ``shuffle_ids``, which makes the FCFS tie rule (request id)
    differ from list order."""
    rng = np.random.default_rng(seed)
    pmax = budget if whole_prefill else 3 * budget
    kind = rng.choice(4, size=n, p=[0.1, 0.4, 0.35, 0.15])
    prompts = np.where(kind == 0, 0,
                       np.where(kind == 1, rng.integers(1, 33, n),
                                np.where(kind == 2, rng.integers(1, pmax + 1, n), pmax)))
    dkind = rng.choice(3, size=n, p=[0.1, 0.5, 0.4])
    decodes = np.where(dkind == 0, 0,
                       np.where(dkind == 1, rng.integers(1, 17, n), rng.geometric(1 / 60, n)))
    decodes = np.where(prompts + decodes == 0, 1, decodes)
    lam = load * tokens_per_s / float(np.mean(prompts + decodes))
    times = np.cumsum(rng.exponential(1 / lam, n))
    # a fifth of the requests arrive together with the previous one
    same = rng.random(n) < 0.2
    same[0] = False
    for i in np.nonzero(same)[0]:
        times[i] = times[i - 1]
    ids = (rng.permutation(n) if shuffle_ids else np.arange(n)) + 1000
    return [(int(ids[i]), float(times[i]), int(prompts[i]), int(decodes[i])) for i in range(n)]


def test_reference_conservation():
    from math import ceil

    def stair(p, d, c):
        return 0.01128 + 0.03547 * ceil((p + d) / 128)

    for policy in ("fastertransformer", "vllm", "orca", "sarathi"):
        for kmax in (None, 8):
            whole = policy in ("fastertransformer", "vllm")
            trace = make_trace(7, 400, 128, whole, 0.9, 128 / stair(128, 0, 0))
            req, it = reference_simulate(policy, 128, kmax, stair, trace)
            assert sum(p + d for *_, p, d in trace) == sum(r[2] + r[3] for r in it)
            assert all(0 < r[2] + r[3] <= 128 for r in it)
            assert all(r[1] == r[0] + stair(r[2], r[3], 0) for r in it)
            assert all(b[0] >= a[1] for a, b in zip(it, it[1:]))
            done = Counter()
            for r in it:
                for q, k, n in r[5]:
                    done[q, k] += n
            for rid, _a, p, d in trace:
                arr, pend, ftok, comp = req[rid]
                assert arr <= pend <= comp
                assert (ftok is None) == (d == 0)
                assert done[rid, "p"] == p and done[rid, "d"] == d


# --------------------------------------------------------------------------------------------
# The project's simulator against the reference

def _staircase():
    from llmqueue.engine import StaircaseBatchTime
    return StaircaseBatchTime(c=0.01128, a=0.03547, b0=128)


def _affine():
    from llmqueue.engine import AffineBatchTime
    return AffineBatchTime(c=0.008, a_prefill=0.00025, a_decode=0.0004, a_context=1e-6)


# (budget, max_batch_size, batch-time model, load, n, seed)
CONFIGS = [
    (128, None, "staircase", 0.5, 2500, 1),
    (512, None, "staircase", 0.9, 2500, 2),
    (64, None, "affine", 1.2, 2000, 3),
    (128, 8, "affine", 0.7, 2000, 4),
    (512, 8, "staircase", 0.3, 2000, 5),
    (64, 8, "staircase", 1.1, 2000, 6),
]


def _run_both(policy, budget, kmax, model, trace):
    """Run the reference and the generic engine; the fast core, where it applies, is compared
    with the reference here too. Returns the reference tables and the generic engine's result."""
    from llmqueue.engine import Request
    from llmqueue.policies import make_policy
    from llmqueue.sim import simulate

    ref_req, ref_it = reference_simulate(policy, budget, kmax, model.duration, trace)
    reqs = [Request(rid, t, p, d) for rid, t, p, d in trace]
    pol = make_policy(policy, budget, kmax)
    if model.load_only:
        _compare(ref_req, ref_it, simulate(pol, model, reqs, record_composition=True, engine="fast"))
    res = simulate(pol, model, reqs, record_composition=True, engine="generic")
    return ref_req, ref_it, res


def _same(a, b):
    a = float("nan") if a is None else float(a)
    b = float("nan") if b is None else float(b)
    return a == b or (math.isnan(a) and math.isnan(b))


def _compare(ref_req, ref_it, res):
    df = res.requests
    assert len(df) == len(ref_req)
    cols = ["arrival_time", "prefill_end_time", "first_token_time", "completion_time"]
    bad = []
    for row in df.itertuples(index=False):
        want = ref_req[int(row.request_id)]
        got = tuple(getattr(row, c) for c in cols)
        if not all(_same(g, w) for g, w in zip(got, want)):
            bad.append((int(row.request_id), got, want))
    it = res.iterations
    n = min(len(it), len(ref_it))
    first_bad_iter = None
    for i in range(n):
        r = ref_it[i]
        plan = res.compositions[i]
        comp = sorted([(rid, "p", int(k)) for rid, k in plan.prefill]
                      + [(rid, "d", 1) for rid in plan.decode])
        got = (float(it["start_time"].iat[i]), float(it["end_time"].iat[i]),
               int(it["prefill_tokens"].iat[i]), int(it["decode_tokens"].iat[i]),
               int(it["num_requests"].iat[i]), tuple(comp))
        want = r[:5] + (tuple(sorted(r[5])),)
        if got != want:
            first_bad_iter = (i, got, want)
            break
    assert first_bad_iter is None, f"first differing iteration (index, simulator, reference): {first_bad_iter}"
    assert len(it) == len(ref_it) == len(res.compositions)
    assert not bad, f"{len(bad)} requests differ; first (id, simulator, reference): {bad[:3]}"


@pytest.mark.parametrize("policy", ["fastertransformer", "vllm", "orca", "sarathi"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"b{c[0]}-k{c[1]}-{c[2]}-load{c[3]}")
def test_simulator_agrees_with_reference(policy, config):
    budget, kmax, model_name, load, n, seed = config
    model = _staircase() if model_name == "staircase" else _affine()
    whole = policy in ("fastertransformer", "vllm")
    capacity = budget / model.duration(budget, 0, 0)  # tokens per second at a full batch
    if policy == "fastertransformer":
        # decode priority starves prefills: a backlog builds at any load and every later batch
        # is a small decode-only one, so a shorter trace covers as many iterations
        n //= 5
    trace = make_trace(seed * 10 + len(policy), n, budget, whole, load, capacity)
    _compare(*_run_both(policy, budget, kmax, model, trace))


@pytest.mark.parametrize("policy", ["fastertransformer", "vllm", "orca", "sarathi"])
def test_simulator_agrees_on_fig8_and_edges(policy):
    from llmqueue.engine import ConstantBatchTime
    budget = 5 if policy == "orca" else 4
    _compare(*_run_both(policy, budget, None, ConstantBatchTime(1.0), FIG8))
    # decode 0; an arrival exactly at a boundary (1.0); idling; a simultaneous pair; k_max
    edges = [(0, 0.0, 3, 0), (1, 1.0, 2, 2), (2, 5.0, 0, 1), (3, 5.0, 1, 1), (4, 9.0, 4, 3)]
    for kmax in (None, 1, 2):
        _compare(*_run_both(policy, 4, kmax, ConstantBatchTime(1.0), edges))


@pytest.mark.parametrize("policy", ["fastertransformer", "vllm", "orca", "sarathi"])
def test_simulator_fcfs_ties_in_input_order(policy):
    """Requests with the same arrival time are served in the order they enter the engine (their
    order in the input stream), whatever their ids."""
    model = _staircase()
    budget = 128
    whole = policy in ("fastertransformer", "vllm")
    from llmqueue.engine import ConstantBatchTime
    # 2 and 3 tie and compete for a budget of 3; 3 is listed first, so 3 is served first
    pair = [(0, 0.0, 3, 0), (3, 5.0, 2, 1), (2, 5.0, 2, 1)]
    for kmax in (None, 1):
        _compare(*_run_both(policy, 3, kmax, ConstantBatchTime(1.0), pair))
    _, it = reference_simulate(policy, 3, None, lambda p, d, c: 1.0, pair)
    assert it[1][5][0][0] == 3
    trace = make_trace(99, 400 if whole else 1500, budget, whole, 0.8,
                       budget / model.duration(budget, 0, 0), shuffle_ids=True)
    _compare(*_run_both(policy, budget, None, model, trace))


@pytest.mark.parametrize("policy", ["fastertransformer", "vllm"])
def test_both_stall_on_prompt_over_budget(policy):
    from llmqueue.engine import ConstantBatchTime, Request
    from llmqueue.policies import make_policy
    from llmqueue.sim import simulate

    trace = [(0, 0.0, 4, 1), (1, 0.0, 9, 1), (2, 0.5, 1, 1)]
    with pytest.raises(RuntimeError, match="stalled"):
        reference_simulate(policy, 8, None, _unit, trace)
    with pytest.raises(Exception) as ei:
        simulate(make_policy(policy, 8, None), ConstantBatchTime(1.0),
                 [Request(*r) for r in trace], record_composition=True)
    assert "Stall" in type(ei.value).__name__
