"""The capacity report of a network: loads, rho_k, the scaling LP, cycles, and the theory's verdict.

Spec section 5: rho_k < 1 at every engine is necessary. For feedforward networks (no cycle
through two or more engines; chains, DAGs and fork-join whose engines are visited in one
direction) work-conserving K-FCFS policies at every engine are stable whenever every rho_k < 1
(paper v3). With a cycle between engines that is not enough (the Rybko-Stolyar network): the
report then says so, gives the closed-form virtual-station condition when the network has the
Rybko-Stolyar shape, and the fluid model's prediction for the configured rules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .capacity_lp import max_load_scale
from .fluid import fluid_verdict
from .model import Network
from .pressure import MaxPressure
from .traffic import engine_cycles, engine_loads, step_loads
from .virtual_station import rybko_stolyar


@dataclass
class NetworkCapacity:
    classes: list[dict]
    steps: list[dict]
    engines: list[dict]
    theta_star: float                 # largest common scale of the arrival rates with every rho_k < 1
    bottleneck: list[str]
    feedforward: bool
    cycles: list[list[str]]
    virtual_station: dict | None
    fluid: dict | None
    stable: str                       # "stable" | "unstable" | "unknown"
    verdict: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def network_capacity(net: Network, fluid: bool = True) -> NetworkCapacity:
    """Traffic, rho_k, theta*, the bottleneck and a verdict for ``net`` (see the module docstring)."""
    loads = engine_loads(net)
    lp = max_load_scale(net)
    engines: list[dict[str, Any]] = []
    for e in net.engines:
        cap = e.capacity
        engines.append({"name": e.name, "policy": e.policy.describe(), "batch_time": e.batch_time.describe(),
                        "token_budget": e.policy.token_budget, "max_batch_size": e.policy.max_batch_size,
                        "capacity_tokens_per_s": cap, "load_tokens_per_s": loads[e.name],
                        "rho": loads[e.name] / cap, "work_conserving": bool(e.policy.work_conserving)})
    classes = [{"name": c.name, "arrival_rate": c.rate, "max_arrival_rate": c.rate * lp.theta,
                "workflow": c.workflow.kind, "steps": len(c.workflow.steps),
                "mean_visits_per_job": float(c.workflow.visits_per_job().sum())} for c in net.classes]
    cycles = engine_cycles(net)
    vs = rybko_stolyar(net)
    rep = NetworkCapacity(classes, [asdict(s) for s in step_loads(net)], engines, lp.theta, list(lp.bottleneck),
                          not cycles, cycles, vs.to_dict() if vs is not None else None, None, "unknown")
    v = rep.verdict
    rho_max = max(x["rho"] for x in engines)
    v.append(f"largest rho_k = {rho_max:.4f}; the arrival rates can be scaled by theta* = {lp.theta:.4f} before "
             f"an engine saturates (bottleneck: {', '.join(lp.bottleneck)}).")
    if rho_max >= 1:
        rep.stable = "unstable"
        v.append("some rho_k >= 1: no policy is stable.")
    has_kmax = any(e.policy.max_batch_size is not None for e in net.engines)
    if has_kmax:
        v.append("an engine has max_batch_size: its capacity b_max / t(b_max) is an upper bound only (spec "
                 "section 4, vertex C); the verdicts below assume full batches.")
    all_wc = all(e.policy.work_conserving for e in net.engines)
    if not cycles:
        if all_wc and rho_max < 1 and not has_kmax:
            rep.stable = "stable"
            v.append("feedforward network (no cycle between engines) with work-conserving policies at every "
                     "engine: stable, as every rho_k < 1 (spec section 5, paper v3: K-FCFS reaches maximum "
                     "throughput on DAG and fork-join workflows).")
        elif not all_wc:
            v.append("feedforward network, but some engine's policy is not work-conserving: no guarantee.")
    else:
        shown = "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:3])
        v.append(f"the engines form a cycle ({shown}): rho_k < 1 is necessary but not sufficient; strict "
                 f"priorities can be unstable (Rybko-Stolyar). Max-pressure (Dai and Lin 2005) is "
                 f"throughput-optimal in the fluid model.")
    if vs is not None:
        v.append(f"Rybko-Stolyar shape: {vs.verdict}. The exit priority is stable only up to scale "
                 f"{vs.exit_scale_limit:.4f} of these rates (rho_v < 1).")
    if fluid and rho_max < 1:
        try:
            fv = fluid_verdict(net)
        except ValueError as e:                      # e.g. an engine in two stations
            v.append(f"fluid model not run: {e}")
        else:
            rep.fluid = fv.to_dict()
            v.append(f"fluid model of the configured rules: {fv.verdict} (from one unit of fluid in each buffer).")
            if rep.stable == "unknown" and fv.verdict in ("drains", "diverges"):
                rep.stable = "stable" if fv.verdict == "drains" else "unstable"
    if any(isinstance(e.policy, MaxPressure) for e in net.engines):
        v.append("max-pressure engines idle on purpose when every pressure is <= 0 (they stop feeding a "
                 "congested downstream buffer).")
    return rep
