"""Bad scenarios and traces exit non-zero with one clear message, never a traceback."""

import textwrap

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app

GOOD = """
engine:
  policy: sarathi
  token_budget: 512
  batch_time: {model: staircase, c_ms: 11.28, a_ms: 35.47, b0: 128}
workload:
  arrival: {process: poisson, rate: 5.0}
  prompt_tokens: {dist: fixed, value: 129}
  decode_tokens: {dist: fixed, value: 112}
  num_requests: 50
seed: 1
"""

BAD = {
    "unknown top-level key": (GOOD + "colour: blue\n", "colour: unknown key"),
    "unknown engine key": (GOOD.replace("token_budget: 512", "token_budgte: 512"), "engine.token_budgte: unknown key"),
    "wrong type": (GOOD.replace("token_budget: 512", "token_budget: lots"), "engine.token_budget"),
    "negative rate": (GOOD.replace("rate: 5.0", "rate: -3"), "workload.arrival.rate"),
    "zero budget": (GOOD.replace("token_budget: 512", "token_budget: 0"), "engine.token_budget"),
    "unknown policy": (GOOD.replace("policy: sarathi", "policy: fifo"), "unknown policy 'fifo'"),
    "unknown distribution": (GOOD.replace("dist: fixed, value: 129", "dist: zipf, value: 3"), "workload.prompt_tokens"),
    "unknown batch-time model": (GOOD.replace("model: staircase", "model: cubic"), "engine.batch_time"),
    "no end": (GOOD.replace("num_requests: 50", ""), "num_requests"),
    "trace and arrival": (GOOD.replace("num_requests: 50", "num_requests: 50\n  trace: x.csv"), "not both"),
    "not a mapping": ("- 1\n- 2\n", "YAML mapping"),
    "bad yaml": ("engine: {policy: [\n", "not valid YAML"),
    "negative lengths": (GOOD.replace("value: 112", "value: -1"), "workload.decode_tokens"),
    "empty workload": ("workload: {}\n", "workload is empty"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_scenario(tmp_path, case):
    text, needle = BAD[case]
    p = tmp_path / "s.yaml"
    p.write_text(text)
    for cmd in ("simulate", "capacity"):
        r = CliRunner().invoke(app, [cmd, str(p)])
        assert r.exit_code == 2, (case, r.output)
        assert needle in r.output, (case, r.output)
        assert "Traceback" not in r.output


def test_prompt_larger_than_whole_prefill_budget(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(GOOD.replace("policy: sarathi", "policy: vllm").replace("token_budget: 512", "token_budget: 128"))
    r = CliRunner().invoke(app, ["simulate", str(p)])
    assert r.exit_code == 2 and "no batch can be formed" in r.output and "token_budget" in r.output
    # capacity explains it instead of failing
    r = CliRunner().invoke(app, ["capacity", str(p)])
    assert r.exit_code == 0 and "freezes" in r.output


def test_negative_rate_flag(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(GOOD)
    r = CliRunner().invoke(app, ["simulate", str(p), "--request-rate", "-1"])
    assert r.exit_code == 2 and "workload.arrival.rate" in r.output


def test_malformed_trace_names_line(tmp_path):
    t = tmp_path / "t.csv"
    t.write_text("arrival_time,prompt_tokens,decode_tokens\n0.1,10,5\n0.2,ten,5\n")
    s = tmp_path / "s.yaml"
    s.write_text(textwrap.dedent(f"""
        engine: {{policy: sarathi, token_budget: 64}}
        workload: {{trace: {t.name}}}
    """))
    r = CliRunner().invoke(app, ["simulate", str(s)])
    assert r.exit_code == 2
    assert "t.csv:3:2" in r.output and "prompt_tokens" in r.output


def test_missing_scenario_file():
    r = CliRunner().invoke(app, ["simulate", "/nonexistent/scenario.yaml"])
    assert r.exit_code == 2 and "no such scenario" in r.output


def test_good_scenario_runs(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(GOOD)
    r = CliRunner().invoke(app, ["simulate", str(p), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    from llmqueue.sim.tables import read_run_table
    req = read_run_table(tmp_path / "out", "requests")
    assert list(req.columns) == ["request_id", "arrival_time", "prompt_tokens", "decode_tokens",
                                 "prefill_end_time", "first_token_time", "completion_time"]
    assert len(req) == 50
    it = read_run_table(tmp_path / "out", "iterations")
    assert list(it.columns)[:5] == ["start_time", "end_time", "prefill_tokens", "decode_tokens", "num_requests"]
