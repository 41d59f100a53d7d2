"""``--stop-when-diverging`` (issue 13 point 11, issue 16 point 4): a runaway backlog stops the
run early with a "diverging" verdict, checked by the driver loop that already runs (fast core,
event kernel, network sampling); a stable run is unchanged by the rule."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.engine.batch_time import ConstantBatchTime
from llmqueue.policies import make_policy
from llmqueue.sim.diverging import DivergenceRule
from llmqueue.sim.simulate import simulate
from llmqueue.workload import Fixed, PoissonArrivals, Workload

runner = CliRunner()
BT = ConstantBatchTime(0.01)          # budget 16: 1600 tokens/s


def _requests(rate, n):
    return Workload(arrival=PoissonArrivals(rate), prompt_tokens=Fixed(10), decode_tokens=Fixed(10),
                    num_requests=n).requests(3)


@pytest.mark.parametrize("engine", ["fast", "generic"])
def test_an_overloaded_run_stops_early(engine):
    rule = DivergenceRule.for_budget(16)                  # 16,000 tokens
    res = simulate(make_policy("sarathi", 16, None), BT, _requests(160, 5000), engine=engine, stop=rule)
    assert rule.stopped is not None and "diverging" in rule.verdict()
    last_arrival = 5000 / 160
    assert res.end_time < 0.8 * last_arrival              # stopped early (arrivals run ~31 s)
    assert rule.stopped.backlog_tokens > 16_000 and rule.stopped.backlog_tokens >= 1.5 * rule.stopped.earlier_tokens
    assert res.tokens_arrived == res.tokens_processed + res.tokens_left and res.tokens_left > 16_000
    assert res.requests["completion_time"].isna().any()       # those in the system are unfinished


@pytest.mark.parametrize("engine", ["fast", "generic"])
def test_a_stable_run_is_unchanged_by_the_rule(engine):
    policy = make_policy("sarathi", 16, None)
    plain = simulate(policy, BT, _requests(40, 1500), engine=engine)
    rule = DivergenceRule.for_budget(16)
    ruled = simulate(policy, BT, _requests(40, 1500), engine=engine, stop=rule)
    assert rule.stopped is None
    pd.testing.assert_frame_equal(plain.requests, ruled.requests)
    pd.testing.assert_frame_equal(plain.iterations, ruled.iterations)
    assert plain.end_time == ruled.end_time


def test_the_rule_needs_growth_not_only_a_large_backlog():
    rule = DivergenceRule(min_backlog_tokens=100)
    for t in range(1, 2000):
        assert not rule.check(float(t), 500.0)           # large but flat: a stable (if slow) engine
    grow = DivergenceRule(min_backlog_tokens=100)
    assert any(grow.check(float(t), 10.0 * t) for t in range(1, 2000))
    assert len(grow._history) <= 256
    with pytest.raises(ValueError):
        DivergenceRule(min_backlog_tokens=0)


SINGLE = """
engine: {{policy: sarathi, token_budget: 16, batch_time: {{model: constant, t_ms: 10}}}}
workload:
  arrival: {{process: poisson, rate: {rate}}}
  prompt_tokens: {{dist: fixed, value: 10}}
  decode_tokens: {{dist: fixed, value: 10}}
  num_requests: {n}
seed: 1
"""


def test_cli_simulate_overloaded_and_stable(tmp_path):
    p = tmp_path / "over.yaml"
    p.write_text(SINGLE.format(rate=160, n=20000))
    r = runner.invoke(app, ["simulate", str(p), "--stop-when-diverging", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "verdict: diverging: stopped at t =" in " ".join(r.output.split())
    assert '"verdict": "diverging"' in (tmp_path / "o" / "summary.json").read_text()
    q = tmp_path / "stable.yaml"
    q.write_text(SINGLE.format(rate=40, n=2000))
    a = runner.invoke(app, ["simulate", str(q)])
    b = runner.invoke(app, ["simulate", str(q), "--stop-when-diverging"])
    assert a.exit_code == b.exit_code == 0 and a.output == b.output and "diverging" not in b.output


NET = """
network:
  engines:
    - {{name: e, policy: sarathi, token_budget: 16, batch_time: {{model: constant, t_ms: 10}}}}
  classes:
    - name: A
      arrival: {{process: poisson, rate: {rate}}}
      workflow:
        chain:
          - {{engine: e, prompt_tokens: {{dist: fixed, value: 10}}, decode_tokens: {{dist: fixed, value: 10}}}}
seed: 1
simulation: {{horizon_s: {horizon}, sample_interval_s: 1}}
"""


def test_cli_network_simulate_stops_when_diverging(tmp_path):
    p = tmp_path / "net.yaml"
    p.write_text(NET.format(rate=160, horizon=2000))
    r = runner.invoke(app, ["simulate", str(p), "--stop-when-diverging"])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "verdict: diverging" in flat and "2000 s simulated" not in flat
    stopped_at = float(flat.split("verdict: diverging: stopped at t = ")[1].split()[0])
    assert stopped_at < 100
    q = tmp_path / "stable.yaml"
    q.write_text(NET.format(rate=40, horizon=30))
    a = runner.invoke(app, ["simulate", str(q)])
    b = runner.invoke(app, ["simulate", str(q), "--stop-when-diverging"])
    assert a.exit_code == b.exit_code == 0 and a.output == b.output
