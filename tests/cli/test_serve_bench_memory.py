"""``serve-bench`` honours the scenario's ``engine.memory`` with either engine: the simulated one
(it used to drop it and simulate unlimited memory) and the real one (it used to have no KV memory
model and never preempted)."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from llmqueue.cli import app

SCENARIO = """
engine:
  policy: vllm-v1
  token_budget: 512
  memory: {capacity_tokens: 8192}
workload:
  arrival: {process: poisson, rate: 3}
  prompt_tokens: {dist: uniform, low: 20, high: 600}
  decode_tokens: {dist: geometric, mean: 200}
  num_requests: 300
seed: 2
"""


def test_serve_bench_sim_runs_the_memory_model(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO)
    r = CliRunner().invoke(app, ["serve-bench", str(p), "--engine", "sim", "--out", str(tmp_path / "bench")])
    assert r.exit_code == 0, r.output
    assert "KV memory: peak" in r.output
    bench = json.loads((tmp_path / "bench" / "summary.json").read_text())
    assert bench["peak_kv_tokens"] <= 8192 and bench["preemptions"] > 0
    assert len(pd.read_csv(tmp_path / "bench" / "preemptions.csv")) == bench["preemptions"]
    # the same run as `simulate`: one path for the simulated engine
    r = CliRunner().invoke(app, ["simulate", str(p), "--out", str(tmp_path / "sim")])
    assert r.exit_code == 0, r.output
    sim = json.loads((tmp_path / "sim" / "summary.json").read_text())
    for key in ("completed", "num_iterations", "preemptions", "peak_kv_tokens", "tokens_recomputed",
                "max_backlog_tokens", "p99_e2el_ms"):
        assert bench[key] == sim[key], key


SMALL = """
engine:
  policy: vllm-v1
  token_budget: 128
  memory: {capacity_tokens: 640, block_size: 16}
workload:
  arrival: {process: poisson, rate: 100000}   # all at once: the pool must preempt whatever the CPU speed
  prompt_tokens: {dist: uniform, low: 20, high: 120}
  decode_tokens: {dist: uniform, low: 10, high: 40}
  num_requests: 24
seed: 3
"""


def test_serve_bench_real_runs_the_memory_model(tmp_path):
    """The real engine under a small KV pool preempts, stays within it and completes every request."""
    import pytest
    pytest.importorskip("torch")
    p = tmp_path / "s.yaml"
    p.write_text(SMALL)
    r = CliRunner().invoke(app, ["serve-bench", str(p), "--engine", "real", "--model", "tiny",
                                 "--out", str(tmp_path / "real")])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "real" / "summary.json").read_text())
    assert s["completed"] == 24 and s["preemptions"] > 0 and s["peak_kv_tokens"] <= 640
    assert s["tokens_conserved"]
