"""Verdicts over the arrival phase (issue 13, points 2, 3 and 6): simulate and report print the
same verdict line; the README's overloaded vanilla vLLM example is diverging; the arrival limits
and the idle tail of a horizon are said; check-policy shows vLLM's idle-budget step."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.policies import find_idle_budget_witness, make_policy


def _run(*args):
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_readme_overloaded_vllm_is_diverging_in_simulate_and_report(tmp_path):
    out = tmp_path / "run"
    sim = _run("simulate", "fig1", "--policy", "vllm", "--request-rate", "11.8", "--out", str(out))
    line = next(x for x in sim.splitlines() if x.startswith("verdict over the arrival phase"))
    assert "unstable (diverging)" in line and "after the last arrival, the drain, is not analysed" in line
    _run("report", str(out))
    html = (out / "report.html").read_text()
    assert line.replace("&", "&amp;") in html or line in html


def test_duration_flag_is_not_capped_by_the_scenarios_num_requests():
    out = _run("simulate", "fig1", "--duration", "300")       # fig1 sets num_requests: 3000
    n = int(re.search(r"requests: (\d+)", out).group(1))
    assert n > 3500                                            # 13 req/s for 300 s
    out = _run("simulate", "fig1", "--num-requests", "500", "--duration", "10")
    assert "stopped by duration_s = 10 s before num_requests = 500" in out


def test_idle_tail_after_the_horizon_is_said():
    out = _run("simulate", "fig1", "--num-requests", "100", "--horizon", "100")
    assert "throughputs divide by the horizon 100 s" in out and "the engine was idle from" in out


def test_network_trend_uses_the_arrival_phase():
    out = _run("simulate", "rybko-stolyar", "--duration", "3000", "--horizon", "3500")
    trend = float(re.search(r"trend over the second half of the arrival phase ([-+0-9.e]+)", out).group(1))
    assert trend > 0, out


def test_vllm_leaves_budget_idle_while_decodes_wait_and_sarathi_does_not():
    w = find_idle_budget_witness(make_policy("vllm", 16, None))
    assert w is not None and w.idle_tokens > 0 and w.waiting_decodes
    assert w.plan.tokens > 0 and not w.plan.decode                  # a prefill batch, not a stall
    assert all(s.prefill_left <= 16 for s in w.view.requests)
    assert find_idle_budget_witness(make_policy("sarathi", 16, None)) is None
    out = _run("check-policy", "vllm", "--examples", "200")
    assert "NOT work-conserving" in out and "Budget left idle while decodes wait" in out and "plan:" in out
    assert "work-conserving on all" in _run("check-policy", "sarathi", "--examples", "200")
