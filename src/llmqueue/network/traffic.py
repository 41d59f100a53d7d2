"""Traffic equations of a network: visits, token loads, rho_k, and the engine graph.

Per class, :meth:`Workflow.visits_per_job` solves the traffic equations of one job (forks
count every branch, repeats and routing loops multiply visits). The token load a step brings
to its engine is ``lambda_class * visits * (mean prompt + mean decode)``; summed per engine and
divided by its capacity ``b_max / t(b_max)`` it is rho_k (spec section 5). A step addressed
to a router loads the router's engines: equally under round robin (each replica gets every
n-th visit), in proportion to capacity under the load-balancing rules (the ideal split).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .model import Network


@dataclass(frozen=True)
class StepLoad:
    """What one step of one class brings to the network."""

    job_class: str
    step: str
    label: str
    target: str                 # engine or router
    visits_per_job: float
    mean_prompt_tokens: float
    mean_decode_tokens: float
    tokens_per_s: float         # lambda * visits * mean tokens


def step_loads(net: Network) -> list[StepLoad]:
    """The load of every step (in the order of :meth:`Network.steps`). With a prefill/decode
    split (:class:`~llmqueue.network.model.Disaggregation`), a step addressed to the prefill pool
    is two loads: its prompt tokens there, and its decode tokens (step ``<name>.decode``) at the
    decode pool."""
    out = []
    dis = net.disaggregation
    for c in net.classes:
        v = c.workflow.visits_per_job()
        for s, x in zip(c.workflow.steps, v):
            if dis is not None and s.engine == dis.prefill:
                p, d = s.prompt_tokens.mean, s.decode_tokens.mean
                out.append(StepLoad(c.name, s.name, s.buffer, s.engine, float(x), p, 0.0, c.rate * float(x) * p))
                out.append(StepLoad(c.name, f"{s.name}.decode", s.buffer, dis.decode, float(x), 0.0, d,
                                    c.rate * float(x) * d))
                continue
            out.append(StepLoad(c.name, s.name, s.buffer, s.engine, float(x), s.prompt_tokens.mean,
                                s.decode_tokens.mean, c.rate * float(x) * s.mean_tokens))
    return out


def router_split(net: Network, target: str) -> dict[str, float]:
    """Fraction of a target's load each engine gets (see the module docstring)."""
    r = net.router(target)
    if r is None:
        return {target: 1.0}
    if r.rule == "round_robin":
        return {e: 1.0 / len(r.engines) for e in r.engines}
    caps = {e: net.engine(e).capacity for e in r.engines}
    total = sum(caps.values())
    return {e: c / total for e, c in caps.items()}


def engine_loads(net: Network) -> dict[str, float]:
    """Token load (tokens/s) of every engine under the routers' splits."""
    load = {e.name: 0.0 for e in net.engines}
    for sl in step_loads(net):
        for e, f in router_split(net, sl.target).items():
            load[e] += f * sl.tokens_per_s
    return load


def rho(net: Network) -> dict[str, float]:
    """rho_k = load / capacity of every engine."""
    return {name: x / net.engine(name).capacity for name, x in engine_loads(net).items()}


def visit_routes(net: Network) -> dict[str, tuple[tuple[str, float], ...]]:
    """For each label, the labels a completed visit feeds and the expected visits to each.

    A repeat feeds the label itself with the repeat probability; a DAG step feeds each step
    waiting for it, a step that joins j branches counting 1/j from each (each branch brings
    a j-th of a join job on average); a routing step feeds its ``next`` targets with their
    probabilities. Max-pressure weighs downstream backlogs with these.
    """
    out: dict[str, tuple[tuple[str, float], ...]] = {}
    for c in net.classes:
        wf = c.workflow
        for i, s in enumerate(wf.steps):
            feeds: dict[str, float] = {}
            if s.repeat > 0:
                feeds[s.buffer] = s.repeat
            for j, p in wf.successors(i):
                t = wf.steps[j]
                share = 1.0 / len(t.after) if wf.kind == "dag" else 1.0
                feeds[t.buffer] = feeds.get(t.buffer, 0.0) + (1 - s.repeat) * p * share
            out[s.buffer] = tuple((k, q) for k, q in feeds.items() if q > 0)
    return out


def visit_tokens(net: Network) -> dict[str, float]:
    """Mean prompt + decode tokens of one visit, per label (labels with a positive mean)."""
    return {s.label: s.mean_tokens for _, _, _, s in net.steps() if s.mean_tokens > 0}


def engine_graph(net: Network) -> nx.DiGraph:
    """Stations (engines, and routers standing for their engines) as nodes; an edge a -> b when
    some job goes from a visit at a to a visit at b."""
    g = nx.DiGraph()
    g.add_nodes_from(s.engine for _, _, _, s in net.steps())
    for c in net.classes:
        wf = c.workflow
        for i, s in enumerate(wf.steps):
            for j, p in wf.successors(i):
                if p > 0:
                    g.add_edge(s.engine, wf.steps[j].engine)
    return g


def engine_cycles(net: Network) -> list[list[str]]:
    """Cycles through two or more stations (a repeat, or consecutive visits to one station, is not one)."""
    g = engine_graph(net)
    g.remove_edges_from([(a, b) for a, b in g.edges if a == b])
    # each cycle from its smallest name, then by length and name: the same on every run (networkx's
    # order follows set iteration, which changes with the interpreter's hash seed)
    cycles = [c[c.index(min(c)):] + c[:c.index(min(c))] for c in nx.simple_cycles(g)]
    return sorted(cycles, key=lambda c: (len(c), c))[:10]
