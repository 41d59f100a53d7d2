"""Fuzzing the scenario loader (issue 13 point 11): every bad input gives one LLMQueueError whose
message names the file and the field (or line), never another exception type.

Starting from valid scenarios of both forms, hypothesis replaces a value anywhere in the tree with
a wrong type, NaN, inf, a negative, zero or huge number, deletes a key, adds an unknown one,
points a step or router at an engine that does not exist, or closes a routing loop with no exit;
it also feeds random text and bytes as the YAML file. The loaded scenario is then built (policy,
batch time, memory, workload, network), which must succeed or fail the same way.
"""

from __future__ import annotations

import copy
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.config import load_scenario, scenario_from_data
from llmqueue.errors import LLMQueueError

FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SINGLE = {
    "engine": {"policy": "sarathi", "token_budget": 64, "max_batch_size": 8,
               "batch_time": {"model": "staircase", "c_ms": 11.0, "a_ms": 35.0, "b0": 128},
               "class_priority": ["default"],
               "memory": {"capacity_tokens": 4096, "block_size": 16}},
    "workload": {"arrival": {"process": "poisson", "rate": 5.0},
                 "prompt_tokens": {"dist": "uniform", "low": 1, "high": 40},
                 "decode_tokens": {"dist": "lognormal", "mean": 20.0, "sigma": 0.5, "max": 100},
                 "num_requests": 20, "prefix": {"groups": 2, "tokens": 4}},
    "seed": 1, "simulation": {"horizon_s": 100.0},
}

NETWORK = {
    "network": {
        "engines": [{"name": "e1", "token_budget": 64, "batch_time": {"model": "constant", "t_ms": 10.0},
                     "class_priority": ["A.a", "A.b"]},
                    {"name": "e2", "token_budget": 64, "replicas": 2, "router": "round_robin",
                     "batch_time": {"model": "affine", "c_ms": 5.0, "prefill_ms": 0.1}}],
        "routers": [{"name": "r", "engines": ["e1"]}],
        "classes": [{"name": "A", "arrival": {"rate": 1.0}, "workflow": {"routing": {"start": "a", "steps": [
            {"name": "a", "engine": "e1", "prompt_tokens": {"dist": "fixed", "value": 4},
             "decode_tokens": {"dist": "poisson", "mean": 3.0}, "next": {"b": 0.5}},
            {"name": "b", "engine": "r", "prompt_tokens": {"dist": "geometric", "mean": 3.0},
             "decode_tokens": {"dist": "fixed", "value": 2}, "next": {"a": 0.3}}]}}},
                    {"name": "B", "arrival": {"rate": 1.0}, "workflow": {"chain": [
                        {"engine": "e2", "prompt_tokens": {"dist": "fixed", "value": 4},
                         "decode_tokens": {"dist": "fixed", "value": 4}},
                        {"parallel": [{"engine": "e1", "prompt_tokens": {"dist": "fixed", "value": 1},
                                       "decode_tokens": {"dist": "fixed", "value": 1}}]}]}}]},
    "seed": 0, "simulation": {"horizon_s": 50.0, "sample_interval_s": 1.0},
}

BAD_VALUES = st.one_of(
    st.sampled_from([None, True, False, "", "x", "e9", [], {}, ["e9"], {"k": 1}, math.nan, math.inf, -math.inf,
                     0, -1, -0.5, 0.0, 10**20, -(10**20), 10**400, 1e308, 2**63, 2**64, "1e9", "NaN"]),
    st.integers(), st.floats(), st.text(max_size=8))


def _paths(node, prefix=()):
    """Every (path, value) in a nested dict/list tree."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _mutate(base, data):
    d = copy.deepcopy(base)
    paths = [p for p, _ in _paths(d) if p]
    path = data.draw(st.sampled_from(paths), label="path")
    parent = d
    for k in path[:-1]:
        parent = parent[k]
    op = data.draw(st.sampled_from(["replace", "delete", "unknown", "rename"]), label="op")
    last = path[-1]
    if op == "replace":
        parent[last] = data.draw(BAD_VALUES, label="value")
    elif op == "delete":
        del parent[last]
    elif op == "unknown" and isinstance(parent, dict):
        parent[data.draw(st.sampled_from(["bogus", "Engine", "rate_", "horizon"]), label="key")] = 1
    elif op == "rename" and isinstance(parent[last], str):
        parent[last] = data.draw(st.sampled_from(["e9", "Z9", "a", "b", "A.z", "r", "e2[0]", ""]), label="name")
    return d


def _load_and_build(d):
    try:
        sc = scenario_from_data(d, source="fuzz.yaml")
        if sc.is_network:
            sc.build_network()
        else:
            sc.single_engine()
            sc.build_network() if sc.workload.num_requests is None else None
    except LLMQueueError as e:
        msg = str(e)
        assert msg.strip() and "Traceback" not in msg
        assert msg.startswith("fuzz.yaml") or "fuzz.yaml" in msg or ":" in msg, msg
        assert all(line.startswith("fuzz.yaml: ") for line in msg.splitlines()), msg


@FUZZ
@given(st.data())
def test_single_engine_scenarios(data):
    _load_and_build(_mutate(SINGLE, data))


@FUZZ
@given(st.data())
def test_network_scenarios(data):
    _load_and_build(_mutate(NETWORK, data))


@FUZZ
@given(st.data())
def test_cyclic_routing_and_undefined_engines(data):
    d = copy.deepcopy(NETWORK)
    steps = d["network"]["classes"][0]["workflow"]["routing"]["steps"]
    steps[0]["next"] = {"b": data.draw(st.floats(0, 1.5, allow_nan=False), label="a->b")}
    steps[1]["next"] = {"a": data.draw(st.floats(0, 1.5, allow_nan=False), label="b->a")}
    steps[1]["engine"] = data.draw(st.sampled_from(["e1", "e2", "r", "e9", "e2[1]"]), label="engine")
    try:
        sc = scenario_from_data(d, source="fuzz.yaml")
        sc.build_network()
    except LLMQueueError as e:
        assert str(e).startswith("fuzz.yaml: network."), str(e)
        return
    assert steps[0]["next"]["b"] * steps[1]["next"]["a"] < 1     # a loop with no exit is refused


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 st.builds(lambda t: yaml.safe_dump(t).encode(),
                           st.recursive(st.none() | st.integers() | st.floats() | st.text(max_size=5),
                                        lambda c: st.lists(c, max_size=3) | st.dictionaries(
                                            st.sampled_from(["engine", "workload", "network", "seed", "x"]),
                                            c, max_size=3), max_leaves=8))))
def test_random_files(tmp_path_factory, raw):
    p = tmp_path_factory.mktemp("fz") / "s.yaml"
    p.write_bytes(raw)
    try:
        load_scenario(p)
    except LLMQueueError as e:
        assert str(e).startswith(str(p)), str(e)


def test_the_cli_prints_one_line_for_fuzzed_files(tmp_path):
    runner = CliRunner()
    step_a = NETWORK["network"]["classes"][0]["workflow"]["routing"]["steps"][0]
    cases = {"nan.yaml": "engine: {token_budget: .nan}\nworkload: {initial_requests: [{decode_tokens: 1}]}\n",
             "bin.yaml": b"\x89PNG\r\n\x1a\n\x00\x00",
             "cyc.yaml": yaml.safe_dump({**NETWORK, "network": {**NETWORK["network"], "classes": [
                 {**NETWORK["network"]["classes"][0], "workflow": {"routing": {"start": "a", "steps": [
                     {**step_a, "next": {"a": 1.0}}]}}}]}}),
             "ghost.yaml": yaml.safe_dump({**NETWORK, "network": {**NETWORK["network"], "routers": [
                 {"name": "r", "engines": ["e1", "ghost"]}]}})}
    for name, text in cases.items():
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        for cmd in ("simulate", "capacity"):
            r = runner.invoke(app, [cmd, str(p)])
            assert r.exit_code == 2 and "Traceback" not in r.output, (name, cmd, r.output)
            assert "".join(r.output.split()).startswith(f"error:{p}"), (name, cmd, r.output)
