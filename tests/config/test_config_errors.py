"""The one scenario schema refuses what it cannot honour, with the file and field path in one line.

Regression tests for issue 12 item 3: a typo in a network engine's ``class_priority`` (``[Z9,
A1]``) used to be accepted silently and flip the verdict; the same typo in a single engine's
``class_priority`` too; dangling references were reported without their field path; network
engines could not declare ``memory``; a scenario file was parsed twice (once to sniff its kind).
"""

import textwrap
from importlib import resources

import pytest
import yaml
from typer.testing import CliRunner

from llmqueue.cli import app

runner = CliRunner()

SINGLE = """
engine:
  policy: sarathi
  token_budget: 512
workload:
  arrival: {process: poisson, rate: 5.0}
  prompt_tokens: {dist: fixed, value: 129}
  decode_tokens: {dist: fixed, value: 112}
  num_requests: 50
seed: 1
"""

NET = """
network:
  engines:
    - {name: e, policy: sarathi, token_budget: 256, batch_time: {model: constant, t_ms: 50}}
    - {name: f, policy: sarathi, token_budget: 256, batch_time: {model: constant, t_ms: 50}}
  routers:
    - {name: r, engines: [e, f]}
  classes:
    - name: C
      arrival: {process: poisson, rate: 2.0}
      workflow:
        dag:
          - {name: a, engine: e, prompt_tokens: {dist: poisson, mean: 30}, decode_tokens: {dist: fixed, value: 5}}
          - {name: b, engine: r, after: [a], prompt_tokens: {dist: fixed, value: 9},
                   decode_tokens: {dist: fixed, value: 5}}
simulation: {horizon_s: 20}
"""


def _fails(tmp_path, text, *needles, commands=("simulate", "capacity")):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    for cmd in commands:
        r = runner.invoke(app, [cmd, str(p)])
        assert r.exit_code == 2, (cmd, r.output)
        assert "Traceback" not in r.output
        flat = " ".join(r.output.split())   # the console may wrap a long line
        assert f"{p}: " in flat, r.output
        for needle in needles:
            assert needle in flat, (needle, r.output)
    return flat


def test_network_class_priority_typo_is_refused(tmp_path):
    builtin = resources.files("llmqueue") / "data" / "scenarios" / "rybko-stolyar.yaml"
    text = builtin.read_text().replace("[B2, A1]", "[Z9, A1]")
    assert "[Z9, A1]" in text
    _fails(tmp_path, text, "network.engines.0.class_priority.0: 'Z9' is not the label of any step",
           "labels: A1, A2, B1, B2")


def test_single_engine_class_priority_typo_is_refused(tmp_path):
    _fails(tmp_path, SINGLE.replace("token_budget: 512", "token_budget: 512\n  class_priority: [defualt]"),
           "engine.class_priority.0: 'defualt' is not a job class of this workload (classes: default)")


def test_single_engine_class_priority_checked_against_the_trace(tmp_path):
    (tmp_path / "t.csv").write_text("arrival_time,prompt_tokens,decode_tokens,class\n0.1,10,5,gold\n0.2,10,5,free\n")
    text = textwrap.dedent("""
        engine: {policy: sarathi, token_budget: 64, class_priority: [gold, fre]}
        workload: {trace: t.csv}
    """)
    _fails(tmp_path, text, "engine.class_priority.1: 'fre' is not a job class of this workload "
                           "(classes: free, gold)", commands=("simulate",))
    (tmp_path / "s.yaml").write_text(text.replace("fre]", "free]"))
    r = runner.invoke(app, ["simulate", str(tmp_path / "s.yaml")])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("old,new,needle", [
    ("engines: [e, f]", "engines: [e, g]", "network.routers.0.engines.1: 'g' is not an engine (engines: e, f)"),
    ("{name: a, engine: e,", "{name: a, engine: x,", ("network.classes.0.workflow.dag.0.engine: 'x' is neither an "
     "engine nor a router (known: e, f, r)")),
    ("after: [a]", "after: [z]", "network.classes.0.workflow.dag.1.after.0: 'z' is not a step of this workflow"),
    ("{name: b,", "{name: b, label: C.a,", ("network.classes.0.workflow.dag.1: label 'C.a' is already used by "
     "network.classes.0.workflow.dag.0")),
    ("{name: r,", "{name: e,", "network.routers.0.name: the name 'e' is used twice"),
    ("t_ms: 50}}\n    - {name: f", "t_ms: 50}, memory: {capacity_tokens: -5}}\n    - {name: f",
     "network.engines.0.memory.capacity_tokens: Input should be greater than or equal to 1"),
    ("t_ms: 50}}\n    - {name: f", "t_ms: 50}, memory: {capacity_tokens: 8}}\n    - {name: f",
     "network.engines.0.memory: capacity_tokens (8) must hold at least one block"),
    ("simulation: {horizon_s: 20}", "simulation: {horizon_s: 20, record_composition: true}",
     "simulation.record_composition: a single-engine key"),
    ("simulation: {horizon_s: 20}", "simulation: {horizon_s: 20, horizon: 3}", "simulation.horizon: unknown key"),
])
def test_network_references_name_the_field(tmp_path, old, new, needle):
    text = NET.replace(old, new)
    assert text != NET
    _fails(tmp_path, text, needle)


def test_errors_inside_parallel_stages_keep_their_path(tmp_path):
    text = NET.replace("dag:\n", "chain:\n          - parallel:\n").replace(", after: [a]", "")
    for name in "ab":
        text = text.replace(f"          - {{name: {name}", f"              - {{name: {name}")
    _fails(tmp_path, text.replace("engine: r,", "engine: nope,"),
           "network.classes.0.workflow.chain.0.parallel.1.engine: 'nope' is neither")
    _fails(tmp_path, text.replace("mean: 30", "mean: -30"),
           "network.classes.0.workflow.chain.0.parallel.0.prompt_tokens.mean: Input should be greater than 0")


def test_routing_start_names_a_step(tmp_path):
    text = NET.replace("dag:\n", "routing:\n          start: q\n          steps:\n").replace(", after: [a]", "")
    _fails(tmp_path, text, "network.classes.0.workflow.routing.start: 'q' is not a step of this workflow")


@pytest.mark.parametrize("old,new,needle", [
    ("token_budget: 512", "token_budget: 512\n  replicas: 4", "engine.replicas: a key of network engines"),
    ("policy: sarathi", "policy: max-pressure", "max-pressure balances the buffers of a network"),
    ("seed: 1", "seed: 1\nsimulation: {duration_s: 5}", "simulation.duration_s: a network key"),
    ("seed: 1", "seed: 1\nsimulation: {horizon: 5}", "simulation.horizon: unknown key"),
    ("seed: 1", "seed: 1\nnetwork: {engines: [], classes: []}", "engine: a network scenario declares"),
])
def test_forms_do_not_mix(tmp_path, old, new, needle):
    text = SINGLE.replace(old, new)
    assert text != SINGLE
    _fails(tmp_path, text, needle)


def test_every_error_line_names_file_and_field(tmp_path):
    text = NET.replace("token_budget: 256, batch", "token_budget: 0, batch")
    text = text.replace("engines: [e, f]", "engines: [e, q]")
    flat = _fails(tmp_path, text, "network.engines.0.token_budget", "network.engines.1.token_budget")
    p = tmp_path / "s.yaml"
    assert flat.count(f"{p}: network.engines.") == 2


def test_network_engines_take_memory(tmp_path):
    from llmqueue.config import load_scenario
    from llmqueue.memory.config import MemoryConfig
    p = tmp_path / "n.yaml"
    p.write_text(NET.replace("t_ms: 50}}\n    - {name: f", "t_ms: 50}, memory: {capacity_tokens: 4096, "
                             "block_size: 32}, replicas: 2}\n    - {name: f").replace("[e, f]", "['e[0]', f]"))
    net = load_scenario(p).build_network()
    mem = MemoryConfig(capacity_tokens=4096, block_size=32)
    assert [(e.name, e.memory) for e in net.engines] == [("e[0]", mem), ("e[1]", mem), ("f", None)]
    r = runner.invoke(app, ["capacity", str(p)])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("text", [SINGLE, NET])
def test_a_scenario_file_is_parsed_once(tmp_path, monkeypatch, text):
    p = tmp_path / "once.yaml"
    p.write_text(text)
    calls = []
    real = yaml.safe_load
    monkeypatch.setattr(yaml, "safe_load", lambda s: calls.append(1) or real(s))
    r = runner.invoke(app, ["capacity", str(p)])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1


@pytest.mark.parametrize("args", [["sweep", "rybko-stolyar", "--out", "{tmp}/sw"],
                                  ["serve-bench", "fork-join", "--engine", "sim"]])
def test_single_engine_commands_refuse_networks_in_one_line(tmp_path, args):
    r = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert "a network scenario, and this needs a single engine" in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_overrides_address_list_items():
    from llmqueue.config import ScenarioError, load_scenario
    sc = load_scenario("rybko-stolyar", {"network.engines.1.token_budget": 512, "seed": 7})
    assert [e.token_budget for e in sc.network.engines] == [768, 512] and sc.seed == 7
    with pytest.raises(ScenarioError, match=r"network.engines is a list of 2 item\(s\)"):
        load_scenario("rybko-stolyar", {"network.engines.2.token_budget": 512})
