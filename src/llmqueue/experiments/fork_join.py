"""``reproduce fork-join``: a DAG and a fork-join workflow under work-conserving policies.

The network of :func:`~llmqueue.network.examples.agent_pipeline`: four engines with unequal
capacities (paper staircase, budgets 512 / 1024 / 512 / 256), a fork-join class and a DAG
class, token means set so that every engine has the same rho. The capacity LP puts the
boundary at rho = 1 on every engine (theta* = 1 / rho). Simulated with Sarathi-Serve at every
engine (work-conserving and K-FCFS: decodes of earlier requests first) at rho = 0.90, 0.97,
1.03 and 1.10: stable up to the boundary, unstable just above it, the backlog growing at about
the fluid model's slope (faster at 1.03, where the engines after the saturated planner are
exactly critical and their queues also grow, diffusively). The simulated boundary is also read
off the job throughput in overload (rho = 1.10). Contrast: Orca at every engine at rho = 0.97,
work-conserving but not FCFS across phases (new prefills go before older requests' decodes):
completions leave each engine in bursts, the joins downstream starve between them and lose
capacity, and the network diverges below the boundary.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..lab.plots import finish
from ..network.capacity_lp import max_load_scale
from ..network.examples import agent_pipeline
from ..network.fluid import FluidModel
from ..network.metrics import stability_verdict
from ..network.output import jsonable
from ..network.plots import save, subplots
from ..network.runner import run_tasks
from ..network.simulator import simulate_network
from ..sim.manifest import write_text

SAMPLE, MAX_BACKLOG, SEED, BASE_RHO = 20.0, 2.0e6, 1, 0.9
#: Run size of the full experiment and of the --fast one (a quarter of the horizon).
SIZES = {False: {"horizon_s": 3_000.0}, True: {"horizon_s": 750.0}}
RUNS = (("sarathi", 0.90), ("sarathi", 0.97), ("sarathi", 1.03), ("sarathi", 1.10), ("orca", 0.97))
FLUID_RHOS = (0.9, 0.97, 1.0, 1.03, 1.06, 1.1, 1.15)


def sim_task(policy: str, rho: float, horizon: float) -> dict:
    net = agent_pipeline(rho / BASE_RHO, policy, BASE_RHO)
    res = simulate_network(net, SEED, horizon=horizon, sample_interval=SAMPLE, max_backlog_tokens=MAX_BACKLOG,
                           validate=False)
    s = res.summary()
    done = res.jobs[res.jobs["completion_time"].notna()]
    t1 = res.end_time / 3
    window = done[done["completion_time"] > t1]
    span = res.end_time - t1
    late = res.backlog[res.backlog["time"] >= res.end_time / 2]
    engine_slopes = {e.name: float(np.polyfit(late["time"], late[e.name], 1)[0]) for e in net.engines}
    return {
        "policy": policy, "rho": rho, "verdict": stability_verdict(res), "stopped_early": res.stopped_early,
        "end_time_s": res.end_time, "time_s": res.backlog["time"].tolist(),
        "total_tokens": res.backlog["total_tokens"].tolist(),
        "engine_tokens": {e.name: res.backlog[e.name].tolist() for e in net.engines},
        "slope_tokens_per_s": s.backlog_slope_tokens_per_s, "engine_slopes_tokens_per_s": engine_slopes,
        "max_backlog_tokens": s.max_backlog_tokens,
        "final_backlog_tokens": s.final_backlog_tokens,
        "throughput_jobs_per_s": {c.name: float((window["job_class"] == c.name).sum() / span) for c in net.classes},
        "arrival_rate": {c.name: c.rate for c in net.classes},
        "mean_e2e_s": _s(s["mean_e2el_ms"]), "p99_e2e_s": _s(s["p99_e2el_ms"]),
        "e2e_by_class_s": {c: _s(v["mean_e2el_ms"]) for c, v in s["classes"].items()},
    }


def fluid_task(rho: float, horizon: float) -> dict:
    """The fluid model from an empty network: its total over time and its growth rate."""
    df = FluidModel(agent_pipeline(rho / BASE_RHO, "sarathi", BASE_RHO)).integrate(None, horizon, 2000)
    half = df["time"] >= horizon / 2
    slope = float(np.polyfit(df["time"][half], df["total"][half], 1)[0])
    return {"rho": rho, "time_s": df["time"].tolist()[::20], "total_tokens": df["total"].tolist()[::20],
            "slope_tokens_per_s": slope}


def _s(ms):
    return None if ms is None else ms / 1e3


def run(out: Path, *, fast: bool = False, horizon: float | None = None, workers: int | None = None,
        progress: Callable[[int, int], None] | None = None) -> dict:
    """The experiment into ``out``; ``horizon`` (seconds) overrides the size's, ``workers`` the processes."""
    out = Path(out)
    horizon = SIZES[fast]["horizon_s"] if horizon is None else float(horizon)
    out.mkdir(parents=True, exist_ok=True)
    base = agent_pipeline(1.0, "sarathi", BASE_RHO)
    lp = max_load_scale(base)
    boundary = BASE_RHO * lp.theta                     # rho at theta*: 1.0 by construction
    tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
        (sim_task, (p, r, horizon)) for p, r in sorted(RUNS, key=lambda x: -x[1])]
    tasks += [(fluid_task, (r, horizon)) for r in FLUID_RHOS]
    results = run_tasks(tasks, workers, progress=progress)
    sims = sorted(results[: len(RUNS)], key=lambda s: (s["policy"] != "sarathi", s["rho"]))
    fluids = results[len(RUNS):]
    fluid_at = {f["rho"]: f for f in fluids}
    for s in sims:
        s["fluid_slope_tokens_per_s"] = fluid_at[s["rho"]]["slope_tokens_per_s"] if s["rho"] in fluid_at else None
    bracket = {}
    for pol in {p for p, _ in RUNS}:
        mine = [s for s in sims if s["policy"] == pol]
        stable = [s["rho"] for s in mine if s["verdict"] == "bounded"]
        unstable = [s["rho"] for s in mine if s["verdict"] == "diverges"]
        bracket[pol] = {"largest_bounded_rho": max(stable, default=None),
                        "smallest_diverging_rho": min(unstable, default=None)}
    over = next(s for s in sims if s["policy"] == "sarathi" and s["rho"] == max(r for _, r in RUNS))
    sizes = {c.name: float(sum(v * s.mean_tokens for v, s in zip(c.workflow.visits_per_job(), c.workflow.steps)))
             for c in base.classes}
    offered_base = sum(c.rate * sizes[c.name] for c in base.classes)
    theta_sim = sum(over["throughput_jobs_per_s"][c] * sizes[c] for c in sizes) / offered_base
    boundary_sim = {"theta_lp": lp.theta, "theta_sim_overload": theta_sim,
                    "relative_error": theta_sim / lp.theta - 1,
                    "per_class": {c.name: over["throughput_jobs_per_s"][c.name] / c.rate / lp.theta - 1
                                  for c in base.classes}}
    figures = [_plot(sims, fluids, boundary, out)]
    findings = _findings(sims, bracket, boundary_sim, lp)
    result = {"experiment": "fork-join", "horizon_s": horizon, "seed": SEED, "base_rho": BASE_RHO,
              "theta_star": lp.theta, "bottleneck": list(lp.bottleneck), "boundary_rho": boundary,
              "bracket": bracket, "overload_boundary": boundary_sim, "runs": sims, "fluid": fluids,
              "findings": findings, "figures": figures}
    write_text(out / "result.json", json.dumps(jsonable(result)) + "\n")
    return result


def _findings(sims, bracket, bsim, lp) -> list[str]:
    sar = {s["rho"]: s for s in sims if s["policy"] == "sarathi"}
    parts = ", ".join(f"rho {r:.2f}: {s['verdict']} ({s['slope_tokens_per_s']:+.0f} tokens/s, fluid "
                      f"{s['fluid_slope_tokens_per_s']:+.0f})" for r, s in sorted(sar.items()))
    orca = [s for s in sims if s["policy"] == "orca"]
    contrast = "".join(f" Orca (work-conserving, not K-FCFS) at rho {s['rho']:.2f}: {s['verdict']} "
                       f"({s['slope_tokens_per_s']:+.0f} tokens/s)." for s in orca)
    return [f"Fork-join + DAG workflows over 4 engines, the LP boundary at rho = 1 on every engine (theta* = "
            f"{lp.theta:.4f}); Sarathi-Serve at every engine: {parts}.",
            f"Sarathi's simulated boundary lies within 3% of the LP's (bounded at "
            f"{bracket['sarathi']['largest_bounded_rho']}, diverging at "
            f"{bracket['sarathi']['smallest_diverging_rho']}); "
            f"job throughput in overload gives theta = {bsim['theta_sim_overload']:.4f}, "
            f"{100 * bsim['relative_error']:+.1f}% from the LP.{contrast}"]


def _plot(sims, fluids, boundary, out: Path) -> str:
    fig, axes = subplots(1, 2, w=6.2, h=4.3)
    ax = axes[0][0]
    cmap = {0.9: "#2ca02c", 0.97: "#1f77b4", 1.03: "#ff7f0e", 1.1: "#d62728"}
    fl = {f["rho"]: f for f in fluids}
    for s in (x for x in sims if x["policy"] == "sarathi"):
        c = cmap.get(s["rho"], "grey")
        ax.plot(s["time_s"], np.array(s["total_tokens"]) / 1e3, color=c, lw=1.1,
                label=f"rho {s['rho']:.2f}: {s['verdict']}")
        if s["rho"] in fl and s["rho"] > 1:
            ax.plot(fl[s["rho"]]["time_s"], np.array(fl[s["rho"]]["total_tokens"]) / 1e3, color=c, ls="--", lw=1)
    ax.plot([], [], "k--", lw=1, label="fluid model")
    finish(ax, "time (s)", "unprocessed tokens (thousands)",
           "fork-join + DAG, Sarathi-Serve at every engine", title_size=10, legend={"loc": "upper left"})
    ax = axes[0][1]
    xs = [f["rho"] for f in fluids]
    ax.plot(xs, [f["slope_tokens_per_s"] for f in fluids], "k--", lw=1.2, label="fluid model")
    for pol, marker in (("sarathi", "o"), ("orca", "s")):
        pts = [(s["rho"], s["slope_tokens_per_s"]) for s in sims if s["policy"] == pol]
        ax.plot(*zip(*pts), marker, ms=6, mfc="none" if pol == "orca" else None, label=f"{pol}: whole network")
    pts = [(s["rho"], s["engine_slopes_tokens_per_s"]["planner"]) for s in sims if s["policy"] == "sarathi"]
    ax.plot(*zip(*pts), "x", ms=7, color="#1f77b4", label="sarathi: planner alone")
    ax.axvline(boundary, color="grey", lw=0.8)
    ax.text(boundary, ax.get_ylim()[1] * 0.9, " LP boundary", fontsize=8)
    finish(ax, "rho at every engine", "backlog growth, second half (tokens/s)",
           "growth rate against the fluid model", title_size=10, legend={"loc": "center left"})
    return save(fig, out / "fork_join_backlog.png")
