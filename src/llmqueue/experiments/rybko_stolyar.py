"""``reproduce rybko-stolyar``: spec section 5's network under both priority directions and max-pressure.

At rho = 0.9 and 0.95 on both engines: strict priority to the exiting classes (diverges, in
growing oscillations between the two engines), the reverse priority (bounded), and
max-pressure (bounded, without any priority labelling; also with the ``jobs`` weighting at
0.95). Beside each diverging run, the fluid model started from the simulated buffers once the
backlog has left its normal range; the fluid model's verdict for every rule; the
virtual-station condition in closed form; and max-pressure's latency against the stabilising
(reverse) priority.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ..lab.plots import finish
from ..network.examples import rybko_stolyar
from ..network.fluid import FluidModel, fluid_verdict
from ..network.metrics import stability_verdict
from ..network.output import jsonable
from ..network.plots import COLORS, save, subplots
from ..network.runner import run_tasks
from ..network.simulator import simulate_network
from ..network.virtual_station import rybko_stolyar as virtual_station
from ..sim.manifest import write_text

SAMPLE, MAX_BACKLOG, SEED = 40.0, 1.2e6, 1


class _Sizes(TypedDict):
    horizon_s: float
    rhos: tuple[float, ...]


RHOS = (0.9, 0.95)
#: Run size of the full experiment and of the --fast one: rho 0.95 only, where priority to the
#: exiting classes diverges within 3000 s (at 0.9 its oscillations need the full horizon to show).
SIZES: dict[bool, _Sizes] = {False: {"horizon_s": 12_000.0, "rhos": RHOS},
                             True: {"horizon_s": 4_000.0, "rhos": (0.95,)}}
#: (rule, weighting, name in the figures)
RULES = (("exit", "tokens", "exit"), ("entry", "tokens", "entry"), ("max-pressure", "tokens", "max-pressure"))
EXTRA = ((0.95, "max-pressure", "jobs", "max-pressure (jobs)"),)


def sim_task(rho: float, rule: str, weighting: str, horizon: float) -> dict:
    """One run, reduced to what the figures and result.json need."""
    net = rybko_stolyar(rho, rule, weighting)
    res = simulate_network(net, SEED, horizon=horizon, sample_interval=SAMPLE, max_backlog_tokens=MAX_BACKLOG,
                           validate=False)
    s = res.summary()
    b = res.backlog
    return {
        "rho": rho, "rule": rule, "weighting": weighting, "verdict": stability_verdict(res),
        "stopped_early": res.stopped_early, "end_time_s": res.end_time,
        "time_s": b["time"].tolist(), "total_tokens": b["total_tokens"].tolist(),
        "e1_tokens": b["e1"].tolist(), "e2_tokens": b["e2"].tolist(),
        "buffers": {lab: res.buffers[lab].tolist() for lab in ("A1", "A2", "B1", "B2")},
        "max_backlog_tokens": s.max_backlog_tokens, "final_backlog_tokens": s.final_backlog_tokens,
        "slope_tokens_per_s": s.backlog_slope_tokens_per_s, "jobs_completed": s.jobs_completed,
        "mean_e2e_s": _s(s.e2el.mean), "p50_e2e_s": _s(s.e2el.p50), "p99_e2e_s": _s(s.e2el.p99),
        "throughput_jobs_per_s": {c: v.throughput_jobs_per_s for c, v in s.classes.items()},
    }


def fluid_task(rho: float, rule: str, weighting: str) -> dict:
    """The fluid verdict, and the future work from one unit of fluid in A1 (downsampled)."""
    net = rybko_stolyar(rho, rule, weighting)
    fv = fluid_verdict(net)
    df = FluidModel(net).integrate({"A1": fv.unit_tokens}, fv.horizon_s, 20_000, relative_step=0.03)
    keep = np.unique(np.linspace(0, len(df) - 1, 400).astype(int))
    return {"rho": rho, "rule": rule, "weighting": weighting, "verdict": fv.verdict, "cases": fv.cases,
            "time_s": df["time"].to_numpy()[keep].tolist(),
            "work_units": (df["work"].to_numpy()[keep] / df["work"].iloc[0]).tolist()}


def _s(ms):
    return None if ms is None else ms / 1e3


def _fluid_overlay(run: dict, level: float) -> dict | None:
    """The fluid model from the simulated buffers once the backlog has left its normal range: at the
    peak of the first 400 s after it first exceeds ``level`` tokens."""
    total = np.array(run["total_tokens"])
    t = np.array(run["time_s"])
    above = np.nonzero(total > level)[0]
    if not len(above):
        return None
    k0 = above[0]
    window = np.nonzero((t >= t[k0]) & (t <= t[k0] + 400))[0]
    k = int(window[np.argmax(total[window])])
    if k >= len(t) - 2:
        return None
    net = rybko_stolyar(run["rho"], run["rule"], run["weighting"])
    w0 = {lab: run["buffers"][lab][k] for lab in run["buffers"]}
    df = FluidModel(net).integrate(w0, float(t[-1]), 3000, t0=float(t[k]))
    return {"t0_s": float(t[k]), "time_s": df["time"].tolist()[::10],
            "e1_tokens": (df["A1"] + df["B2"]).tolist()[::10], "e2_tokens": (df["B1"] + df["A2"]).tolist()[::10]}


def _virtual_station(rho: float) -> dict:
    """The virtual-station analysis of the network under priority to the exiting visits."""
    vs = virtual_station(rybko_stolyar(rho, "exit"))
    assert vs is not None  # the Rybko-Stolyar network has the two-station shape by construction
    return vs.to_dict()


def run(out: Path, *, fast: bool = False, horizon: float | None = None, workers: int | None = None,
        progress: Callable[[int, int], None] | None = None) -> dict:
    """The experiment into ``out``; ``horizon`` (seconds) overrides the size's, ``workers`` the processes."""
    out = Path(out)
    horizon = SIZES[fast]["horizon_s"] if horizon is None else float(horizon)
    rhos = SIZES[fast]["rhos"]
    out.mkdir(parents=True, exist_ok=True)
    combos = [(rho, r, w, name) for rho in rhos for r, w, name in RULES] + [e for e in EXTRA if e[0] in rhos]
    tasks: list[tuple[Callable[..., dict], tuple[Any, ...]]] = [(sim_task, (rho, r, w, horizon))
                                                                  for rho, r, w, _ in combos]
    tasks += [(fluid_task, (rho, r, w)) for rho, r, w, _ in combos]
    results = run_tasks(tasks, workers, progress=progress)
    sims, fluids = results[: len(combos)], results[len(combos):]
    for (_rho, _r, _w, name), sim, fl in zip(combos, sims, fluids):
        sim["name"], sim["fluid_verdict"] = name, fl["verdict"]
        fl["name"] = name
    for sim in sims:
        if sim["verdict"] == "diverges":
            normal = max(x["max_backlog_tokens"] for x in sims if x["rho"] == sim["rho"] and x["verdict"] == "bounded")
            sim["fluid_overlay"] = _fluid_overlay(sim, 5 * normal)
        else:
            sim["fluid_overlay"] = None
    vs = {rho: _virtual_station(rho) for rho in rhos}
    by = {(s["rho"], s["name"]): s for s in sims}
    costs = {}
    for rho, _, _, name in combos:
        if name.startswith("max-pressure"):
            mp, ref = by[(rho, name)], by[(rho, "entry")]
            costs[f"{name} at rho {rho}"] = {
                "mean_e2e_s": mp["mean_e2e_s"], "entry_priority_mean_e2e_s": ref["mean_e2e_s"],
                "mean_ratio": mp["mean_e2e_s"] / ref["mean_e2e_s"],
                "p99_e2e_s": mp["p99_e2e_s"], "entry_priority_p99_e2e_s": ref["p99_e2e_s"],
                "p99_ratio": mp["p99_e2e_s"] / ref["p99_e2e_s"]}
    figures = [_plot_backlog(sims, out, rhos), _plot_fluid(fluids, out, rhos)]
    findings = _findings(by, costs, vs, rhos)
    result = {"experiment": "rybko-stolyar", "horizon_s": horizon, "rhos": list(rhos),
              "sample_interval_s": SAMPLE,
              "max_backlog_tokens": MAX_BACKLOG, "seed": SEED, "virtual_station": vs, "latency_cost": costs,
              "runs": sims, "fluid": fluids, "findings": findings, "figures": figures}
    write_text(out / "result.json", json.dumps(jsonable(result)) + "\n")
    return result


def _findings(by: dict, costs: dict, vs: dict, rhos: tuple) -> list[str]:
    out = []
    for rho in rhos:
        ex, en, mp = by[(rho, "exit")], by[(rho, "entry")], by[(rho, "max-pressure")]
        where = (f"passed {ex['max_backlog_tokens'] / 1e6:.1f}M tokens by t = {ex['end_time_s']:.0f} s"
                 if ex["stopped_early"] else f"grew at {ex['slope_tokens_per_s']:.0f} tokens/s")
        out.append(f"rho = {rho}: priority to the exiting classes {ex['verdict']} (backlog {where}; virtual "
                   f"station load {vs[rho]['rho_v']:.2f}; fluid model: {ex['fluid_verdict']}), the reverse priority "
                   f"is {en['verdict']} (max {en['max_backlog_tokens'] / 1e3:.0f}k tokens; fluid: "
                   f"{en['fluid_verdict']}) and max-pressure is {mp['verdict']} (max "
                   f"{mp['max_backlog_tokens'] / 1e3:.0f}k tokens; fluid: {mp['fluid_verdict']}).")
    parts = [f"{k}: mean E2E {v['mean_e2e_s']:.0f} s vs {v['entry_priority_mean_e2e_s']:.0f} s "
             f"(x{v['mean_ratio']:.2f}), p99 x{v['p99_ratio']:.2f}" for k, v in costs.items()]
    out.append("Latency of max-pressure against the stabilising priority: " + "; ".join(parts) + ".")
    return out


def _plot_backlog(sims: list[dict], out: Path, rhos: tuple) -> str:
    fig, axes = subplots(len(rhos), 2, w=6.4, h=4.0)
    for row, rho in enumerate(rhos):
        ax = axes[row][0]
        for s in (x for x in sims if x["rho"] == rho):
            t, b = np.array(s["time_s"]), np.maximum(np.array(s["total_tokens"]), 1)
            ax.plot(t, b, color=COLORS[s["name"]], lw=1.1, label=f"{s['name']}: {s['verdict']}")
        ax.set_yscale("log")
        finish(ax, "time (s)", "unprocessed tokens in the network",
               f"Rybko-Stolyar, rho = {rho} at both engines", title_size=10, legend={"loc": "upper left"})
        ax = axes[row][1]
        ex = next(x for x in sims if x["rho"] == rho and x["name"] == "exit")
        t = np.array(ex["time_s"])
        ax.plot(t, np.array(ex["e1_tokens"]) / 1e3, color="#d62728", lw=1.2, label="engine 1 (simulated)")
        ax.plot(t, np.array(ex["e2_tokens"]) / 1e3, color="#ff7f0e", lw=1.2, label="engine 2 (simulated)")
        fl = ex["fluid_overlay"]
        if fl is not None:
            ax.plot(fl["time_s"], np.array(fl["e1_tokens"]) / 1e3, "k--", lw=1, label="fluid model, engine 1")
            ax.plot(fl["time_s"], np.array(fl["e2_tokens"]) / 1e3, "k:", lw=1.2, label="fluid model, engine 2")
            ax.axvline(fl["t0_s"], color="grey", lw=0.6)
        finish(ax, "time (s)", "unprocessed tokens (thousands)",
               f"priority to exiting classes, rho = {rho}: per engine", title_size=10, legend={"loc": "upper left"})
    return save(fig, out / "rybko_stolyar_backlog.png")


def _plot_fluid(fluids: list[dict], out: Path, rhos: tuple) -> str:
    fig, axes = subplots(1, len(rhos), w=5.6, h=4.0)
    for col, rho in enumerate(rhos):
        ax = axes[0][col]
        for f in (x for x in fluids if x["rho"] == rho):
            ax.plot(np.array(f["time_s"]) / 1e3, np.maximum(f["work_units"], 1e-4), color=COLORS[f["name"]], lw=1.2,
                    label=f"{f['name']}: {f['verdict']}")
        ax.set_yscale("log")
        finish(ax, "time (1000 s)", "future work / initial (fluid)",
               f"fluid model from one unit in A1, rho = {rho}", title_size=10)
    return save(fig, out / "rybko_stolyar_fluid.png")
