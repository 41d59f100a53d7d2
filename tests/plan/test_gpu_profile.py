"""GPU batch times from aiconfigurator-core (optional extra ``gpu``), their tabulation for the fast
core, and lambda* from the steady-state batch composition checked by simulation."""

import numpy as np
import pytest

from llmqueue.analysis import capacity_report
from llmqueue.analysis.mix_capacity import decode_context, mix_lambda_star
from llmqueue.engine.batch_time import AffineBatchTime, mix_composition, paper_staircase, tabulate
from llmqueue.policies import make_policy


def test_mix_lambda_star_is_theorem_2_for_a_load_only_model():
    bt = paper_staircase()
    for pol in ("sarathi", "orca"):
        p = make_policy(pol, 512)
        assert mix_lambda_star(p, bt, 129, 112).lambda_star == pytest.approx(
            capacity_report(p, bt, 129, 112).lambda_star, rel=1e-12)


def test_tabulate_splits_loads_by_the_token_mix():
    bt = AffineBatchTime(c=0.01, a_prefill=1e-4, a_decode=3e-4, a_context=1e-6)
    t = tabulate(bt, 256, 100, 100)
    p, d, c = mix_composition(200, 100, 100)
    assert (p, d) == (100, 100) and c == round(100 * 150.5 + 100)
    assert t.duration(150, 50) == pytest.approx(bt.duration(p, d, c))
    assert t.load_only
    with pytest.raises(ValueError, match="beyond the table"):
        t.duration(257, 0)


def test_decode_context_is_length_biased():
    assert decode_context([10], [4]) == pytest.approx(10 + 2.5)
    assert decode_context([0, 0], [1, 3]) == pytest.approx((1 * 1 + 3 * 2) / 4)


def _verdict(policy, bt, rate, horizon, seed=3):
    from llmqueue.engine.request import Request
    from llmqueue.lab.growth import estimate_run
    from llmqueue.lab.paths import RunPath
    from llmqueue.lab.verdict import decide, tolerance_tokens
    from llmqueue.sim.simulate import simulate
    rng = np.random.default_rng(seed)
    n = int(rate * horizon * 1.2)
    t = np.cumsum(rng.exponential(1 / rate, n))
    reqs = [Request(i, float(t[i]), 129, 112) for i in range(n)]
    res = simulate(policy, bt, reqs, horizon=horizon, validate=False)
    est = estimate_run(RunPath.from_result(res, horizon), "auto", 10, 0.95)
    return decide(est, tolerance_tokens(rate * 241, 0.01), horizon).verdict


def test_affine_lambda_star_checked_by_simulation():
    # a composition-dependent model (decode tokens cost more than prefill, context costs too)
    bt = AffineBatchTime(c=0.012, a_prefill=3e-5, a_decode=1.2e-4, a_context=2e-7)
    pol = make_policy("sarathi", 256)
    lam = mix_lambda_star(pol, bt, 129, 112).lambda_star
    assert _verdict(pol, bt, 0.9 * lam, 300) == "stable"
    assert _verdict(pol, bt, 1.1 * lam, 300) == "unstable"


def _has_gpu_extra() -> bool:
    from llmqueue.engine.gpu_profile import gpu_extra_available
    return gpu_extra_available()


needs_gpu = pytest.mark.skipif(not _has_gpu_extra(), reason="the gpu extra (aiconfigurator-core) is not installed")


@needs_gpu
def test_gpu_profile_matches_the_package_and_caches():
    from llmqueue.engine.gpu_profile import GpuProfileBatchTime
    m = GpuProfileBatchTime("llama-3.1-8b", "h100")
    assert m.duration(512, 0, 512) * 1e3 == pytest.approx(12.0, rel=0.02)        # notes: 12.0 ms
    assert m.duration(0, 64, 64 * 1026) * 1e3 == pytest.approx(10.3, rel=0.02)   # 64 decodes at 1024
    assert m.duration(256, 32, 32 * 1026 + 256) * 1e3 == pytest.approx(10.8, rel=0.02)
    n = len(m._cache)
    m.duration(256, 32, 32 * 1026 + 256)
    assert len(m._cache) == n
    assert GpuProfileBatchTime("llama-3.1-8b", "a100").duration(512, 0, 512) > m.duration(512, 0, 512)


@needs_gpu
def test_gpu_profile_scenario_and_unknown_gpu():
    from llmqueue.config import load_scenario
    sc = load_scenario("fig1", {"engine.batch_time": {"model": "gpu-profile", "model_id": "llama-3.1-8b",
                                                      "gpu": "h100", "backend": "vllm", "tp": 2}})
    assert "2x h100" in sc.build_batch_time().describe()
    from llmqueue.engine.gpu_profile import GpuProfileBatchTime
    with pytest.raises(ValueError, match="no performance data"):
        GpuProfileBatchTime("llama-3.1-8b", "a30").duration(1, 0, 1)


@needs_gpu
def test_gpu_lambda_star_checked_by_simulation_with_the_exact_composition():
    from llmqueue.engine.gpu_profile import GpuProfileBatchTime
    bt = GpuProfileBatchTime("llama-3.1-8b", "h100")
    pol = make_policy("sarathi", 512)
    lam = mix_lambda_star(pol, bt, 129, 112).lambda_star
    assert _verdict(pol, bt, 0.9 * lam, 150) == "stable"
    assert _verdict(pol, bt, 1.1 * lam, 150) == "unstable"


@needs_gpu
def test_plan_over_gpus(tmp_path):
    from llmqueue.lab.plan import PlanSpec, parse_grid, plan_backend, run_plan
    spec = PlanSpec("fig1", overrides={"engine.batch_time": {"model": "gpu-profile", "model_id": "llama-3.1-8b"}},
                    slos={"p99_ttft_ms": 300.0, "p99_tpot_ms": 40.0}, num_requests=300, refine=0,
                    grid=parse_grid(["policy=sarathi", "gpu=a100,h100", "tp=1,2"]))
    o = run_plan(spec, None, plan_backend("serial"))
    d = o.to_json()
    assert {c["params"]["gpu"] for c in d["configs"]} == {"a100", "h100"}
    by = {(c["params"]["gpu"], c["params"]["tp"]): c for c in d["configs"]}
    assert by[("h100", 1)]["max_rate"] > by[("a100", 1)]["max_rate"] > 0
    assert all(c["max_rate"] < c["lambda_star"] for c in d["configs"])


def test_region_scale_equals_the_linear_program():
    from llmqueue.analysis.mix_capacity import region_scale
    from llmqueue.analysis.theory import stability_region_scale
    bt = paper_staircase()
    for b, k, lp, ld in ((512, 64, 129, 112), (256, 8, 129, 112), (384, 400, 50, 300), (128, 1, 10, 1)):
        assert region_scale(bt, b, k, lp, ld) == pytest.approx(stability_region_scale(bt, b, k, lp, ld), rel=1e-9)
