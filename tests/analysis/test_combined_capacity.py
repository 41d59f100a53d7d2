"""`llmqueue capacity` combines compute (Theorem 2), KV memory and prefix-cache hits: the reported
lambda* is checked by simulation at 0.9 and 1.1 of it, for scenarios not tuned to the theory
(issue 13, point 1): the run at 0.9 lambda* must be judged stable (2400 s of arrivals) and the run
at 1.1 lambda* unstable (diverging), by the verdict ``simulate`` and ``report`` print."""

from __future__ import annotations

import pytest

from llmqueue.config import load_scenario
from llmqueue.lab.paths import RunPath
from llmqueue.lab.verdict import run_verdict
from llmqueue.memory.theory import combined_capacity
from llmqueue.run import simulate_scenario

SCENARIOS = {
    "compute": ("""
engine: {policy: sarathi, token_budget: 384, batch_time: {model: staircase, c_ms: 11.28, a_ms: 35.47, b0: 128}}
workload:
  arrival: {process: poisson, rate: 1.0}
  prompt_tokens: {dist: uniform, low: 40, high: 400}
  decode_tokens: {dist: geometric, mean: 90}
  duration_s: 2400
seed: 7
""", "compute", 2400.0),
    "memory": ("""
engine:
  policy: threshold
  token_budget: 512
  batch_time: {model: piecewise_linear, c_ms: 9.0, a_ms: 0.25, b0: 0}
  memory: {capacity_tokens: 12288}
workload:
  arrival: {process: poisson, rate: 1.0}
  prompt_tokens: {dist: uniform, low: 50, high: 350}
  decode_tokens: {dist: uniform, low: 20, high: 220}
  duration_s: 1200
seed: 7
""", "memory", 1200.0),
    "prefix": ("""
engine:
  policy: vllm-v1
  token_budget: 512
  batch_time: {model: staircase, c_ms: 11.28, a_ms: 35.47, b0: 128}
  memory: {capacity_tokens: 400000, prefix_caching: true}
workload:
  arrival: {process: poisson, rate: 1.0}
  prompt_tokens: {dist: uniform, low: 300, high: 800}
  decode_tokens: {dist: geometric, mean: 60}
  prefix: {groups: 3, tokens: 256}
  duration_s: 1200
seed: 7
""", "compute", 1200.0),
}


def _capacity(sc):
    return combined_capacity(sc.build_policy(), sc.build_batch_time(), sc.build_workload(), sc.build_memory(),
                             seed=sc.seed)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_simulation_agrees_with_the_combined_lambda_star(tmp_path, name):
    text, binding, duration = SCENARIOS[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    cc = _capacity(load_scenario(str(path)))
    assert cc.binding == binding
    if name == "prefix":
        assert 0.3 < cc.prefix_hit_rate < 0.6 and "measured" in (cc.prefix_hit_source or "")
        assert cc.compute.mean_prompt_tokens == pytest.approx(550 * (1 - cc.prefix_hit_rate), rel=0.02)
    if name == "memory":
        assert cc.memory is not None and cc.lambda_star == cc.memory.lambda_memory < cc.compute.lambda_star
    for factor, horizon in ((0.9, 2400.0), (1.1, duration)):
        sc = load_scenario(str(path), {"workload.arrival.rate": factor * cc.lambda_star,
                                       "workload.duration_s": horizon})
        here = _capacity(sc)
        assert here.stable == ("stable" if factor < 1 else "unstable")
        rv = run_verdict(RunPath.from_result(simulate_scenario(sc)), here.compute.to_dict())
        assert rv.verdict is not None and rv.estimate is not None
        assert rv.name == ("stable" if factor < 1 else "unstable"), rv.line()


def test_capacity_command_names_the_binding_bound_and_the_hit_rate(tmp_path):
    from typer.testing import CliRunner

    from llmqueue.cli import app
    path = tmp_path / "p.yaml"
    path.write_text(SCENARIOS["prefix"][0])
    r = CliRunner().invoke(app, ["capacity", str(path)])
    assert r.exit_code == 0, r.output
    assert "compute bound binds" in r.output and "prefix cache: hit rate" in r.output
    path.write_text(SCENARIOS["memory"][0])
    r = CliRunner().invoke(app, ["capacity", str(path)])
    assert "memory bound binds" in r.output, r.output
