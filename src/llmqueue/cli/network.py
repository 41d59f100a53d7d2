"""Network scenarios on the command line: ``simulate`` and ``capacity`` of a scenario with a
top-level ``network`` key, and ``llmqueue fluid`` (the fluid model's prediction for its rules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from .output import console, fail, print_json
from .progress import progress_bar


def _load(scenario: str, overrides: dict[str, Any] | None = None) -> tuple[Any, Any]:
    from ..config import load_scenario
    sc = load_scenario(scenario, overrides)
    return sc, sc.build_network()


def _n(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x / 1e3:.4g} s"


def simulate_network_scenario(scenario: str, out: Optional[Path] = None, seed: Optional[int] = None,
                              horizon: Optional[float] = None, duration: Optional[float] = None,
                              as_json: bool = False, quiet: bool = False,
                              stop_when_diverging: bool = False) -> None:
    """``llmqueue simulate`` for a network scenario."""
    from ..network.output import write_network_run
    from ..network.simulator import simulate_network
    from ..sim.diverging import DivergenceRule
    sc, net = _load(scenario, {"seed": seed, "simulation.horizon_s": horizon, "simulation.duration_s": duration})
    sim = sc.simulation
    stop = (DivergenceRule.for_budget(sum(e.policy.token_budget for e in net.engines))
            if stop_when_diverging else None)
    with progress_bar("simulated seconds", quiet=quiet) as progress:
        res = simulate_network(net, sc.seed, horizon=sim.horizon_s, duration=sim.duration_s,
                               sample_interval=sim.sample_interval_s, max_backlog_tokens=sim.max_backlog_tokens,
                               progress=progress, stop=stop)
    s = res.summary()
    extra = {"scenario": sc.model_dump(mode="json"),
             **({"stopped": stop.stopped.to_dict()} if stop and stop.stopped else {})}
    if out is not None:
        write_network_run(res, out, extra=extra)
    if as_json:
        from ..network.output import jsonable
        print_json(jsonable(s.with_extra(extra).to_dict()))
        return
    name = escape(sc.name or scenario)
    early = (f" (stopped early: backlog above {sim.max_backlog_tokens:.6g} tokens)"
             if res.stopped_early and (stop is None or stop.stopped is None) else "")
    console.print(f"[bold]{name}[/]: {_n(len(net.engines), 'engine', 'engines')}, "
                  f"{_n(len(net.classes), 'job class', 'job classes')}, {s['duration_s']:.6g} s simulated{early}",
                  highlight=False)
    console.print(f"jobs: {s['jobs_arrived']} arrived, {s['jobs_completed']} completed, "
                  f"{s['jobs_in_system_at_end']} in the network at the end; E2E mean "
                  f"{_s(s['mean_e2el_ms'])} p99 {_s(s['p99_e2el_ms'])}", highlight=False, markup=False)
    console.print(f"backlog: max {s['max_backlog_tokens']} tokens, at the end {s['final_backlog_tokens']}; "
                  f"trend over the second half of the arrival phase {s['backlog_slope_tokens_per_s']:+.4g} "
                  f"tokens/s; tokens "
                  f"conserved: {s['tokens_conserved']}", highlight=False, markup=False)
    for cname, c in s["classes"].items():
        console.print(f"  class {cname}: {c['throughput_jobs_per_s']:.4g} jobs/s (offered {c['arrival_rate']:.4g}), "
                      f"E2E mean {_s(c['mean_e2el_ms'])} p99 {_s(c['p99_e2el_ms'])}", highlight=False, markup=False)
    for ename, e in s["engines"].items():
        console.print(f"  engine {ename}: rho {e['rho']:.3f}, utilization {e['utilization']:.3f}, "
                      f"max backlog {e['max_backlog_tokens']} tokens; {e['policy']}", highlight=False, markup=False)
    if stop is not None and stop.stopped is not None:
        console.print(stop.verdict(), highlight=False, markup=False)
    if out is not None:
        console.print(f"\nwrote {out}/jobs.csv, visits.csv, iterations_*.csv, backlog.csv, buffers.csv, "
                      f"summary.json", highlight=False, markup=False)


def capacity_network_scenario(scenario: str, as_json: bool = False) -> None:
    """``llmqueue capacity`` for a network scenario."""
    from ..network.capacity import network_capacity
    from ..network.output import jsonable
    sc, net = _load(scenario)
    rep = network_capacity(net)
    if as_json:
        print_json(jsonable(rep.to_dict()))
        return
    console.print(f"[bold]{escape(sc.name or scenario)}[/]: {_n(len(net.engines), 'engine', 'engines')}, "
                  f"{_n(len(net.classes), 'job class', 'job classes')}", highlight=False)
    for e in rep.engines:
        console.print(f"  engine {e['name']}: capacity {e['capacity_tokens_per_s']:.6g} tokens/s, load "
                      f"{e['load_tokens_per_s']:.6g} tokens/s, rho {e['rho']:.4f}; {e['policy']}",
                      highlight=False, markup=False)
    for c in rep.classes:
        console.print(f"  class {c['name']}: {c['arrival_rate']:.6g} jobs/s ({c['workflow']}, "
                      f"{c['mean_visits_per_job']:.4g} visits per job); at most {c['max_arrival_rate']:.6g} jobs/s "
                      f"with the others scaled alike", highlight=False, markup=False)
    console.print("verdict:" + (f" [bold]{escape(rep.stable)}[/]" if rep.stable else ""))
    for line in rep.verdict:
        console.print(f"  - {line}", highlight=False, markup=False)


def fluid(
    scenario: str = typer.Argument(..., help="Network scenario YAML file or built-in name."),
    as_json: bool = typer.Option(False, "--json", help="Print the prediction as JSON."),
    horizon_units: float = typer.Option(40.0, "--horizon-units", help="Horizon, in drain times of one unit of fluid."),
) -> None:
    """Fluid model of a network scenario: does its rule drain or diverge (one unit of fluid in each buffer)?"""
    from ..config import is_network_scenario
    from ..network.fluid import fluid_verdict
    from ..network.output import jsonable
    if not is_network_scenario(scenario):
        fail(f"{scenario}: not a network scenario (a YAML file with a top-level 'network' key)")
    _, net = _load(scenario)
    fv = fluid_verdict(net, horizon_units=horizon_units)
    if as_json:
        print_json(jsonable(fv.to_dict()))
        return
    console.print(f"fluid model: [bold]{escape(fv.verdict)}[/] (unit {fv.unit_tokens:.6g} tokens, horizon "
                  f"{fv.horizon_s:.6g} s)", highlight=False)
    for lab, case in fv.cases.items():
        detail = (f"drains by {case['drain_time_s']:.6g} s" if case["outcome"] == "drains" else
                  f"{case['outcome']}: future work x{case.get('final_work_ratio', float('nan')):.3g}, "
                  f"trend {case.get('growth_tokens_per_s', float('nan')):+.4g} tokens/s")
        console.print(f"  from one unit in {lab}: {detail}", highlight=False, markup=False)
