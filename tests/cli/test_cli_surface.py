"""The command line explains itself: every command, argument and option has help text, help is
not cut at 80 columns, ``simulate --json`` prints the summary as JSON, and ``llmqueue scenarios
NAME`` prints a built-in scenario's YAML that loads, from anywhere, to the same scenario."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.config import builtin_scenarios, load_scenario


def _walk(cmd, path=()):
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(typer.main.get_command(app)))


def test_the_tree_is_walked():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"simulate", "serve-bench", "compare", "kv-capacity", "scenarios", "sweep"} <= names


def test_every_command_argument_and_option_has_help():
    missing = []
    for path, cmd in COMMANDS:
        where = " ".join(("llmqueue", *path))
        if not (cmd.help or "").strip():
            missing.append(f"{where}: the command")
        for p in cmd.params:
            if not (getattr(p, "help", None) or "").strip():
                missing.append(f"{where}: {p.param_type_name} {'/'.join(p.opts)}")
    assert not missing, "no help text:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "llmqueue")
def test_help_fits_80_columns_without_cutting(path):
    r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert r.exit_code == 0, r.output
    assert "…" not in r.output, r.output
    if not path:                                 # the command list: each first sentence whole
        assert "..." not in r.output.replace("[ARGS]...", ""), r.output
    assert max(len(line) for line in r.output.splitlines()) <= 80, r.output
    cmd = dict(COMMANDS)[path]
    for p in cmd.params:
        for opt in p.opts:
            if opt.startswith("--"):
                assert opt in r.output, f"{opt} cut from the help of {path}"


def test_policy_choices_are_listed_whole():
    r = CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    text = " ".join(r.output.split())
    assert "fastertransformer | vllm | orca | sarathi | vllm-v1 | threshold" in text


def test_simulate_json_is_the_summary():
    r = CliRunner().invoke(app, ["simulate", "fig1", "--num-requests", "200", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["num_requests"] == 200 and d["completed"] == 200 and d["tokens_conserved"] is True
    assert d["capacity"]["lambda_star"] == pytest.approx(13.87, abs=0.01)
    assert d["scenario"]["name"] == "fig1"


def test_simulate_json_of_a_network():
    r = CliRunner().invoke(app, ["simulate", "rybko-stolyar", "--horizon", "30", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["duration_s"] == pytest.approx(30) and d["jobs_arrived"] > 0 and d["tokens_conserved"] is True
    assert set(d["engines"]) and d["scenario"]["name"]


def test_scenarios_lists_every_builtin():
    r = CliRunner().invoke(app, ["scenarios"])
    assert r.exit_code == 0
    assert {line.split()[0] for line in r.output.splitlines() if line.strip()} == set(builtin_scenarios())


def test_unknown_scenario_name_is_one_line():
    r = CliRunner().invoke(app, ["scenarios", "nope"])
    assert r.exit_code == 2 and "unknown built-in scenario 'nope'" in r.output and "fig1" in r.output


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_printed_scenario_round_trips(name, tmp_path, monkeypatch):
    r = CliRunner().invoke(app, ["scenarios", name])
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(tmp_path)                  # saved elsewhere, as a user would
    mine = tmp_path / "my.yaml"
    mine.write_text(r.stdout)
    orig, copy = load_scenario(name), load_scenario(str(mine))
    a, b = orig.model_dump(mode="json"), copy.model_dump(mode="json")
    trace = (a.get("workload") or {}).get("trace")
    if trace is not None:                        # made absolute in the printed copy, same file
        assert b["workload"]["trace"] == str((builtin_scenarios()[name].parent / trace).resolve())
        b["workload"]["trace"] = trace
    assert a == b
    if "network" not in a:                       # the same requests too (the trace is read)
        ra, rb = orig.build_workload().requests(1), copy.build_workload().requests(1)
        assert [(q.arrival_time, q.prompt_tokens, q.decode_tokens) for q in ra] == \
               [(q.arrival_time, q.prompt_tokens, q.decode_tokens) for q in rb]
    assert re.search(r"^name: ", r.stdout, re.M)
