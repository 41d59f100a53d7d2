"""Issue 16 point 3: every name that refers to another part of a scenario must exist, with the
field path and the known names in the error, in every command that reads the scenario
(``simulate``, ``capacity`` and ``fluid``). The built-in ``rybko-stolyar`` scenario itself names
only labels that exist (a ``[Z9, A1]`` typo used to flip its verdict from diverges to stable)."""

from importlib import resources

import pytest
import yaml
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.config import builtin_scenarios, load_scenario

runner = CliRunner()
RS = (resources.files("llmqueue") / "data" / "scenarios" / "rybko-stolyar.yaml").read_text()


def _refused(tmp_path, text, needle, commands=("simulate", "capacity", "fluid")):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    for cmd in commands:
        r = runner.invoke(app, [cmd, str(p)])
        flat = " ".join(r.output.split())
        assert r.exit_code == 2 and "Traceback" not in r.output, (cmd, r.output)
        assert f"{p}: {needle}" in flat, (cmd, r.output)


def test_every_builtin_scenario_names_only_what_exists():
    for name in builtin_scenarios():
        sc = load_scenario(name)
        if sc.is_network:
            assert not sc.network.problems(), name
    rs = load_scenario("rybko-stolyar").network
    assert [e.class_priority for e in rs.engines] == [["B2", "A1"], ["A2", "B1"]]


@pytest.mark.parametrize("old,new,needle", [
    ("class_priority: [B2, A1]", "class_priority: [Z9, A1]",
     "network.engines.0.class_priority.0: 'Z9' is not the label of any step (labels: A1, A2, B1, B2)"),
    ("class_priority: [A2, B1]", "class_priority: [A2, b1]",
     "network.engines.1.class_priority.1: 'b1' is not the label of any step"),
    ("- {engine: e2, label: B1", "- {engine: e3, label: B1",
     "network.classes.1.workflow.chain.0.engine: 'e3' is neither an engine nor a router (known: e1, e2)"),
])
def test_network_references_in_every_command(tmp_path, old, new, needle):
    assert old in RS
    _refused(tmp_path, RS.replace(old, new), needle)


def test_router_to_an_undefined_engine(tmp_path):
    data = yaml.safe_load(RS)
    data["network"]["routers"] = [{"name": "r", "engines": ["e1", "e7"]}]
    _refused(tmp_path, yaml.safe_dump(data), "network.routers.0.engines.1: 'e7' is not an engine (engines: e1, e2)")


def test_single_engine_class_priority_in_every_command(tmp_path):
    text = (resources.files("llmqueue") / "data" / "scenarios" / "fig1.yaml").read_text()
    text = text.replace("token_budget: 512", "token_budget: 512\n  class_priority: [default, Z9]")
    _refused(tmp_path, text, "engine.class_priority.1: 'Z9' is not a job class of this workload (classes: default)",
             commands=("simulate", "capacity"))
