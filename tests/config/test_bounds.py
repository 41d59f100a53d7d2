"""Issue 16 point 4: every size has an upper bound checked at load time, and nothing is sized by
the token budget (regression: ``token_budget: 1000000000000000`` ended in a MemoryError after
30 s, a token count of 10^20 in an OverflowError, ``num_requests: 10^12`` ate the machine)."""

import time

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.config import load_scenario
from llmqueue.engine.batch_time import StaircaseBatchTime
from llmqueue.engine.limits import MAX_BUDGET_TOKENS, MAX_REQUEST_TOKENS, MAX_REQUESTS
from llmqueue.errors import ScenarioError
from llmqueue.policies import make_policy
from llmqueue.sim.fast.state import PolicySpec

runner = CliRunner()

FIG1 = """
engine:
  policy: sarathi
  token_budget: {budget}
workload:
  arrival: {{process: poisson, rate: 13.0}}
  prompt_tokens: {{dist: fixed, value: {prompt}}}
  decode_tokens: {{dist: fixed, value: 112}}
  num_requests: {n}
seed: 1
"""


def _cli(tmp_path, cmd="simulate", budget=512, prompt=129, n=100, text=None):
    p = tmp_path / "s.yaml"
    p.write_text(text if text is not None else FIG1.format(budget=budget, prompt=prompt, n=n))
    t0 = time.perf_counter()
    r = runner.invoke(app, [cmd, str(p)])
    return r, " ".join(r.output.split()), time.perf_counter() - t0, p


@pytest.mark.parametrize("cmd", ["simulate", "capacity"])
def test_huge_token_budget_is_one_line_at_once(tmp_path, cmd):
    r, out, dt, p = _cli(tmp_path, cmd, budget=10**15)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"{p}: engine.token_budget:" in out and f"{MAX_BUDGET_TOKENS}" in out
    assert dt < 10


@pytest.mark.parametrize("field,value,bound", [
    ("prompt", 10**20, MAX_REQUEST_TOKENS), ("n", 10**12, MAX_REQUESTS)])
def test_huge_counts_are_refused_with_the_field(tmp_path, field, value, bound):
    r, out, _, p = _cli(tmp_path, **{field: value})
    assert r.exit_code == 2 and "Traceback" not in r.output and "OverflowError" not in r.output, r.output
    where = "workload.prompt_tokens.value" if field == "prompt" else "workload.num_requests"
    assert f"{p}: {where}:" in out and str(bound) in out


def test_a_5000_digit_number_in_yaml_points_at_its_line(tmp_path):
    r, out, _, p = _cli(tmp_path, n="9" * 5000)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"{p}:9:17:" in out and "5000 digits" in out and "set_int_max_str_digits" not in out


def test_expected_requests_of_rate_times_duration_are_bounded(tmp_path):
    text = FIG1.format(budget=512, prompt=129, n=1).replace("num_requests: 1", "duration_s: 1.0e+12")
    r, out, _, p = _cli(tmp_path, text=text)
    assert r.exit_code == 2 and "expected number of requests" in out, r.output


def test_kv_blocks_are_bounded_not_allocated(tmp_path):
    text = FIG1.format(budget=512, prompt=129, n=10).replace(
        "token_budget: 512", "token_budget: 512\n  memory: {capacity_tokens: 1000000000000}")
    r, out, dt, p = _cli(tmp_path, text=text)
    assert r.exit_code == 2 and "engine.memory: the number of KV blocks" in out and "block_size" in out, r.output
    assert dt < 10


def test_largest_budget_runs_and_builds_no_table_per_budget_token(tmp_path):
    bt = StaircaseBatchTime(c=0.01, a=0.03, b0=128)
    spec = PolicySpec.of(make_policy("sarathi", MAX_BUDGET_TOKENS, None), bt, None)
    assert len(spec.T) == 0                      # filled lazily, by the loads that occur
    assert spec.T[300] == bt.load_time(300) and len(spec.T) == 1
    r, out, dt, _ = _cli(tmp_path, budget=MAX_BUDGET_TOKENS, n=200)
    assert r.exit_code == 0, r.output
    assert dt < 30


def test_bounds_hold_for_overrides_too():
    with pytest.raises(ScenarioError, match="engine.token_budget"):
        load_scenario("fig1", {"engine.token_budget": MAX_BUDGET_TOKENS + 1})
    with pytest.raises(ScenarioError, match="workload.num_requests"):
        load_scenario("fig1", {"workload.num_requests": MAX_REQUESTS + 1})
