"""Network scenario files and the command line: built-ins load, errors name the key, `simulate`,
`capacity` and `fluid` accept network scenarios, and the fork-join experiment writes its files."""

import json

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.config import ScenarioError, is_network_scenario, load_scenario
from llmqueue.errors import ExperimentError
from llmqueue.experiments import experiment, run_experiment
from llmqueue.network.traffic import rho

runner = CliRunner()


def test_builtin_network_scenarios_build():
    for name, engines, classes in (("rybko-stolyar", 2, 2), ("fork-join", 4, 2), ("agent-loop", 5, 1)):
        assert is_network_scenario(name)
        net = load_scenario(name).build_network()
        assert (len(net.engines), len(net.classes)) == (engines, classes)
    assert not is_network_scenario("fig1") and not is_network_scenario("no-such-file")
    assert all(r == pytest.approx(0.9) for r in rho(load_scenario("rybko-stolyar").build_network()).values())
    assert all(r == pytest.approx(0.9) for r in rho(load_scenario("fork-join").build_network()).values())


BASE = """
network:
  engines:
    - {name: e, policy: sarathi, token_budget: 256, batch_time: {model: constant, t_ms: 50}}
  classes:
    - name: C
      arrival: {process: poisson, rate: 2.0}
      workflow:
        chain:
          - {engine: e, prompt_tokens: {dist: poisson, mean: 30}, decode_tokens: {dist: fixed, value: 5}}
simulation: {horizon_s: 20}
"""


@pytest.mark.parametrize("old,new,match", [
    ("t_ms: 50}}", "t_ms: 50}, budget: 3}", "network.engines.0.budget: unknown key"),
    ("policy: sarathi", "policy: fifo", "unknown policy 'fifo'"),
    ("mean: 30", "mean: -3", "network.classes.0.workflow.chain.0.prompt_tokens.mean: Input should be greater than 0"),
    ("engine: e,", "engine: x,", "'x' is neither an engine nor a router"),
    ("chain:", "dag:", "step 0 has no name"),
    ("simulation: {horizon_s: 20}", "simulation: {}", "give horizon_s"),
    ("workflow:\n        chain:", "workflow:\n        routing: {start: a, steps: [{name: a, engine: e, prompt_tokens: "
     "{dist: fixed, value: 1}, decode_tokens: {dist: fixed, value: 1}}]}\n        chain:", "exactly one of"),
])
def test_scenario_errors_name_the_key(tmp_path, old, new, match):
    p = tmp_path / "net.yaml"
    text = BASE.replace(old, new)
    assert text != BASE
    p.write_text(text)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(p).build_network()


def test_cli_simulate_capacity_fluid(tmp_path):
    p = tmp_path / "net.yaml"
    p.write_text(BASE)
    out = tmp_path / "run"
    r = runner.invoke(app, ["simulate", str(p), "--out", str(out), "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "1 engine, 1 job class" in r.output and "tokens conserved: True" in r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["engines"]["e"]["rho"] == pytest.approx(2.0 * 35 / 5120)
    for f in ("jobs.csv", "visits.csv", "iterations_e.csv", "backlog.csv", "buffers.csv"):
        assert (out / f).exists()
    r = runner.invoke(app, ["capacity", "rybko-stolyar", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["stable"] == "unstable" and rep["virtual_station"]["rho_v"] == pytest.approx(1.6105, abs=1e-4)
    r = runner.invoke(app, ["capacity", "fork-join"])
    assert r.exit_code == 0 and "feedforward" in r.output and "theta* = 1.1111" in r.output
    r = runner.invoke(app, ["fluid", "rybko-stolyar"])
    assert r.exit_code == 0 and "diverges" in r.output
    r = runner.invoke(app, ["simulate", "rybko-stolyar", "--policy", "orca"])
    assert r.exit_code == 2 and "--policy: for single-engine scenarios only" in r.output
    r = runner.invoke(app, ["fluid", "fig1"])
    assert r.exit_code == 2 and "not a network scenario" in r.output


def test_reproduce_entry_point(tmp_path):
    assert experiment("rybko-stolyar").area == experiment("fork-join").area == "network"
    with pytest.raises(ExperimentError, match="unknown experiment 'nope'"):
        run_experiment("nope", tmp_path)
    from llmqueue.experiments.fork_join import run
    res = run(tmp_path, horizon=150.0, workers=1)
    assert (tmp_path / "fork_join_backlog.png").exists() and (tmp_path / "result.json").exists()
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["theta_star"] == pytest.approx(1 / 0.9) and len(res["findings"]) == 2
