"""Every built-in scenario loads through the one loader (llmqueue.config) and builds exactly what
the two old loaders (llmqueue.scenario, llmqueue.network.scenario on main at c9df339) built.

The fingerprints below were computed with those old loaders: for a single engine the policy, the
batch-time model, the memory and a hash of the first 2000 requests of the workload for the
scenario's seed; for a network a hash of the repr of the whole Network (engines with their
policies and batch times, routers, classes with arrivals and workflows).
"""

import hashlib
from itertools import islice

import pytest

from llmqueue.config import (
    SINGLE_ENGINE_NAME,
    Scenario,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
)

OLD_SINGLE = {
    "fig1": ("SarathiServe(token_budget=512, max_batch_size=None)",
             "StaircaseBatchTime(c=0.01128, a=0.03547, b0=128)", "None", "8995ac7db2409965"),
    "fig8": ("SarathiServe(token_budget=4, max_batch_size=None)", "ConstantBatchTime(t=1.0)", "None",
             "f695f90e72639d8c"),
    "theorem2": ("SarathiServe(token_budget=512, max_batch_size=None)",
                 "StaircaseBatchTime(c=0.01128, a=0.03547, b0=128)", "None", "9e83369a30a9522a"),
    "vertex-c": ("SarathiServe(token_budget=128, max_batch_size=100)",
                 "StaircaseBatchTime(c=0.01128, a=0.03547, b0=128)", "None", "270c3d6033c2521b"),
}
OLD_NETWORK = {"agent-loop": "c05acfbb5d2ecbb5", "fork-join": "2250b9917598e7d4",
               "rybko-stolyar": "ec57f0be5b4a033b"}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_builtins_are_the_known_ones():
    assert set(builtin_scenarios()) == set(OLD_SINGLE) | set(OLD_NETWORK)


@pytest.mark.parametrize("name", sorted(OLD_SINGLE))
def test_single_engine_builtins_build_what_the_old_loader_built(name):
    sc = load_scenario(name)
    assert sc.kind == "engine" and not sc.is_network
    run = sc.single_engine()
    reqs = [(r.request_id, repr(r.arrival_time), r.prompt_tokens, r.decode_tokens, r.job_class, r.label,
             r.prefix_id, r.prefix_tokens) for r in islice(run.workload.requests(run.seed), 2000)]
    assert (repr(run.policy), repr(run.batch_time), repr(run.memory), _hash(repr(reqs))) == OLD_SINGLE[name]
    assert run.policy == sc.build_policy() and run.batch_time == sc.build_batch_time()
    assert run.policy.token_budget == sc.engine.token_budget


@pytest.mark.parametrize("name", sorted(OLD_NETWORK))
def test_network_builtins_build_what_the_old_loader_built(name):
    sc = load_scenario(name)
    assert sc.kind == "network" and sc.is_network and sc.single_engine() is None
    assert _hash(repr(sc.build_network())) == OLD_NETWORK[name]


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_dump_reloads_to_the_same_scenario(name):
    sc = load_scenario(name)
    data = sc.model_dump(mode="json")
    assert ("network" in data) == sc.is_network and ("engine" in data) != sc.is_network
    assert Scenario.model_validate(data).model_dump(mode="json") == data


@pytest.mark.parametrize("name", ["theorem2", "vertex-c"])
def test_single_engine_is_a_network_of_one(name):
    sc = load_scenario(name)
    net = sc.build_network()
    run = sc.single_engine()
    (engine,) = net.engines
    (cls,) = net.classes
    (step,) = cls.workflow.steps
    assert engine.name == SINGLE_ENGINE_NAME and engine.policy == run.policy
    assert engine.batch_time == run.batch_time and engine.memory == run.memory
    assert cls.name == sc.workload.job_class and cls.arrival == run.workload.arrival
    assert (step.engine, step.label) == (SINGLE_ENGINE_NAME, sc.workload.job_class)
    assert (step.prompt_tokens, step.decode_tokens) == (run.workload.prompt_tokens, run.workload.decode_tokens)
    as_net = sc.as_network()
    assert as_net.simulation.duration_s == sc.workload.duration_s and as_net.seed == sc.seed


@pytest.mark.parametrize("name,key", [("fig1", "workload.num_requests"), ("fig8", "workload.trace")])
def test_workloads_without_a_network_form_say_which_key(name, key):
    with pytest.raises(ScenarioError, match=key):
        load_scenario(name).build_network()


def test_network_scenarios_refuse_single_engine_builders():
    sc = load_scenario("fork-join")
    with pytest.raises(ScenarioError, match="network scenario"):
        sc.build_policy()


@pytest.mark.parametrize("policy", ["sarathi", "orca"])
def test_the_network_of_one_runs_like_the_single_engine(policy):
    """The normalised network of one is the same system: it serves the same requests at the same
    times as the single engine (whose stream is the network's class-0 child seed)."""
    import numpy as np
    import pandas as pd

    from llmqueue.network import simulate_network
    from llmqueue.sim.simulate import simulate

    sc = load_scenario("theorem2", {"engine.policy": policy, "workload.duration_s": 40})
    run = sc.single_engine()
    requests = run.workload.requests(np.random.SeedSequence(sc.seed, spawn_key=(0,)))
    single = simulate(run.policy, run.batch_time, requests, horizon=20.0)
    net = simulate_network(sc.build_network(), sc.seed, horizon=20.0)
    pd.testing.assert_frame_equal(net.engine_requests(SINGLE_ENGINE_NAME), single.requests)
    pd.testing.assert_frame_equal(net.iterations[SINGLE_ENGINE_NAME], single.iterations)
