"""Sweeps honour ``engine.memory`` and accept every registered policy (issue 12 regressions).

On the old main the sweep dropped the memory model (every point simulated with unlimited KV
memory, lambda* from Theorem 2 alone) and refused ``vllm-v1`` and ``threshold``.
"""

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.lab.point import run_point
from llmqueue.lab.spec import make_spec
from llmqueue.policies import policy_names

SCENARIO = """
name: memsweep
engine:
  policy: threshold
  token_budget: 512
  batch_time: {{model: piecewise_linear, c_ms: 11.28, a_ms: 0.27711, b0: 0}}
{memory}
workload:
  arrival: {{process: poisson, rate: 10}}
  prompt_tokens: {{dist: fixed, value: 100}}
  decode_tokens: {{dist: fixed, value: 100}}
  duration_s: 600
seed: 1
"""


def scenario(tmp_path, memory=True):
    p = tmp_path / ("mem.yaml" if memory else "nomem.yaml")
    p.write_text(SCENARIO.format(memory="  memory: {capacity_tokens: 4096}" if memory else ""))
    return str(p)


def points(path, policies, rates, relative=True):
    spec = make_spec(path, policies=policies, rates=rates, relative=relative, horizon_s=120.0, max_horizon_s=120.0)
    refs = {(b, k): spec.reference_for(b, k) for b, k in spec.engine_configs()}
    return {p["policy"]: run_point(spec.payload, spec.base, p) for p in spec.grid_points(refs)}


def test_sweep_accepts_every_registered_policy(tmp_path):
    spec = make_spec(scenario(tmp_path), policies=policy_names(), rates=[0.5], horizon_s=60.0)
    assert set(spec.policies) == {"fastertransformer", "vllm", "orca", "sarathi", "vllm-v1", "threshold"}
    with pytest.raises(ValueError, match="unknown policy 'fifo'.*vllm-v1, threshold"):
        make_spec(scenario(tmp_path), policies=["fifo"])


def test_sweep_point_with_memory_is_memory_bound(tmp_path):
    with_mem = points(scenario(tmp_path), ["vllm-v1", "threshold"], [1.3])
    v1, th = with_mem["vllm-v1"], with_mem["threshold"]
    # lambda* is the KV-memory bound, below Theorem 2's 16.71 req/s, and the rate is relative to it
    assert v1["lambda_star"] == pytest.approx(10.12, abs=0.05) and "KV memory" in v1["lambda_star_source"]
    assert v1["rate"] == pytest.approx(1.3 * v1["lambda_star"])
    assert v1["verdict"] == "unstable" and th["verdict"] == "unstable"
    assert v1["preemptions"] > 100 and th["preemptions"] == 0     # threshold admission never preempts
    assert v1["fluid_slope"] != v1["fluid_slope"]                 # no Theorem 2 fluid line when memory binds
    # the same engine and rate without memory: compute-bound, not growing
    without = points(scenario(tmp_path, memory=False), ["vllm-v1"], [v1["rate"]], relative=False)["vllm-v1"]
    assert without["lambda_star"] == pytest.approx(16.71, abs=0.01)
    assert without["verdict"] != "unstable" and "preemptions" not in without
    assert abs(without["slope"]) < 0.1 * v1["slope"]


def test_sweep_cli_with_memory_policies(tmp_path):
    r = CliRunner().invoke(app, ["sweep", scenario(tmp_path), "--policies", "vllm-v1,threshold", "--rates", "1.3",
                                 "--horizon", "60", "--backend", "serial", "--quiet", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    import pandas as pd
    p = pd.read_csv(tmp_path / "o" / "points.csv")
    assert list(p["policy"]) == ["vllm-v1", "threshold"] and (p["verdict"] == "unstable").all()
    assert p.set_index("policy").loc["vllm-v1", "preemptions"] > 0


def test_backlog_path_counts_recomputation_as_work_to_do():
    """B(t) = arrived - useful service: 0 once everything completed, even after preemptions."""
    from llmqueue.engine.batch_time import PiecewiseLinearBatchTime
    from llmqueue.lab.paths import RunPath
    from llmqueue.memory import MemoryConfig
    from llmqueue.policies import VLLMV1
    from llmqueue.sim import simulate
    from llmqueue.workload import Fixed, PoissonArrivals, Workload
    wl = Workload(arrival=PoissonArrivals(14.0), prompt_tokens=Fixed(100), decode_tokens=Fixed(100), num_requests=300)
    res = simulate(VLLMV1(512), PiecewiseLinearBatchTime(11.28e-3, 0.27711e-3, 0), wl.requests(1),
                   memory=MemoryConfig(4096))
    s = res.summary()
    assert s["preemptions"] > 0 and s["tokens_recomputed"] > 0 and s["completed"] == 300
    path = RunPath.from_result(res)
    assert path.backlog(res.end_time) == 0
    assert path.served(res.end_time) == 300 * 200     # useful work only: each token once
