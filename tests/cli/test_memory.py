"""The `engine.memory` scenario key: simulate with KV memory, capacity names the binding resource."""

import json

import pandas as pd
from typer.testing import CliRunner

from llmqueue.cli import app

SCENARIO = """
engine:
  policy: {policy}
  token_budget: 512
  memory: {memory}
workload:
  arrival: {{process: poisson, rate: 3}}
  prompt_tokens: {{dist: uniform, low: 20, high: 600}}
  decode_tokens: {{dist: geometric, mean: 200}}
  num_requests: 300
seed: 2
"""


def write(tmp_path, policy="vllm-v1", memory="{capacity_tokens: 8192}"):
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO.format(policy=policy, memory=memory))
    return p


def test_simulate_with_memory_writes_preemptions(tmp_path):
    r = CliRunner().invoke(app, ["simulate", str(write(tmp_path)), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["completed"] == 300 and s["tokens_conserved"] is True
    assert s["peak_kv_tokens"] <= 8192
    pre = pd.read_csv(tmp_path / "o" / "preemptions.csv")
    assert len(pre) == s["preemptions"]


def test_capacity_names_binding_resource(tmp_path):
    r = CliRunner().invoke(app, ["capacity", str(write(tmp_path))])
    assert r.exit_code == 0, r.output
    assert "binding resource: memory" in r.output
    r = CliRunner().invoke(app, ["capacity", str(write(tmp_path, memory="{model: llama-3-8b, gpu: h100-80gb}")),
                                 "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["memory"]["binding"] == "compute"


def test_memory_errors(tmp_path):
    for memory, needle in [("{}", "capacity_tokens"), ("{model: llama-3-8b}", "model' and 'gpu'"),
                           ("{capacity_tokens: -5}", "engine.memory.capacity_tokens"),
                           ("{capacity_tokens: 100, preemption: drop}", "engine.memory.preemption")]:
        r = CliRunner().invoke(app, ["simulate", str(write(tmp_path, memory=memory))])
        assert r.exit_code == 2 and needle in r.output, (memory, r.output)
    r = CliRunner().invoke(app, ["capacity", str(write(tmp_path, memory="{model: gpt-9, gpu: a100-80gb}"))])
    assert r.exit_code == 2 and "gpt-9" in r.output and "Traceback" not in r.output
