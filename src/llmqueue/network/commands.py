"""Command-line entry points for network scenarios.

``llmqueue simulate`` and ``llmqueue capacity`` hand a scenario with a top-level ``network``
key to :func:`simulate_command` and :func:`capacity_command`; :func:`register` adds
``llmqueue fluid`` (the fluid model's prediction for the scenario's rules). Errors exit with
status 2 and one message, like the single-engine commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..errors import ScenarioError
from ..sim.engine import EngineStalled
from .capacity import network_capacity
from .fluid import fluid_verdict
from .output import jsonable, write_network_run
from ..config import is_network_scenario, load_scenario
from .simulator import simulate_network

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

__all__ = ["is_network_scenario", "simulate_command", "capacity_command", "register"]


def _fail(msg: str) -> None:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _refuse(unsupported: dict | None) -> None:
    given = [flag for flag, value in (unsupported or {}).items() if value not in (None, False, 0)]
    if given:
        _fail(f"{', '.join(given)}: for single-engine scenarios only; a network scenario sets policies, "
              f"budgets and rates per engine and per class in its file")


def _load(scenario: str, overrides: dict | None = None):
    try:
        sc = load_scenario(scenario, overrides)
        return sc, sc.build_network()
    except (ScenarioError, ValueError, OSError) as e:
        _fail(str(e))
        raise  # unreachable


def simulate_command(scenario: str, out: Optional[Path] = None, seed: Optional[int] = None,
                     horizon: Optional[float] = None, duration: Optional[float] = None,
                     unsupported: dict | None = None) -> None:
    """``llmqueue simulate`` for a network scenario."""
    _refuse(unsupported)
    sc, net = _load(scenario, {"seed": seed, "simulation.horizon_s": horizon, "simulation.duration_s": duration})
    sim = sc.simulation
    try:
        res = simulate_network(net, sc.seed, horizon=sim.horizon_s, duration=sim.duration_s,
                               sample_interval=sim.sample_interval_s, max_backlog_tokens=sim.max_backlog_tokens)
    except (EngineStalled, ValueError) as e:
        _fail(str(e))
        return
    s = res.summary()
    if out is not None:
        write_network_run(res, out, extra={"scenario": sc.model_dump(mode="json")})
    name = sc.name or scenario
    console.print(f"[bold]{name}[/]: {_n(len(net.engines), 'engine', 'engines')}, {_n(len(net.classes), 'job class', 'job classes')}, "
                  f"{s['duration_s']:.6g} s simulated" + (" (stopped early: backlog above "
                                                          f"{sim.max_backlog_tokens:.6g} tokens)"
                                                          if res.stopped_early else ""), highlight=False)
    console.print(f"jobs: {s['jobs_arrived']} arrived, {s['jobs_completed']} completed, "
                  f"{s['jobs_in_system_at_end']} in the network at the end; E2E mean "
                  f"{_ms(s['mean_e2el_ms'])} p99 {_ms(s['p99_e2el_ms'])}", highlight=False)
    console.print(f"backlog: max {s['max_backlog_tokens']} tokens, at the end {s['final_backlog_tokens']}; "
                  f"trend over the second half {s['backlog_slope_tokens_per_s']:+.4g} tokens/s; tokens "
                  f"conserved: {s['tokens_conserved']}", highlight=False)
    for cname, c in s["classes"].items():
        console.print(f"  class {cname}: {c['throughput_jobs_per_s']:.4g} jobs/s (offered {c['arrival_rate']:.4g}), "
                      f"E2E mean {_ms(c['mean_e2el_ms'])} p99 {_ms(c['p99_e2el_ms'])}", highlight=False)
    for ename, e in s["engines"].items():
        console.print(f"  engine {ename}: rho {e['rho']:.3f}, utilization {e['utilization']:.3f}, "
                      f"max backlog {e['max_backlog_tokens']} tokens; {e['policy']}", highlight=False)
    if out is not None:
        console.print(f"\nwrote {out}/jobs.csv, visits.csv, iterations_*.csv, backlog.csv, buffers.csv, "
                      f"summary.json", highlight=False)


def _n(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _ms(x) -> str:
    return "n/a" if x is None else f"{x / 1e3:.4g} s"


def capacity_command(scenario: str, as_json: bool = False, unsupported: dict | None = None) -> None:
    """``llmqueue capacity`` for a network scenario."""
    _refuse(unsupported)
    sc, net = _load(scenario)
    try:
        rep = network_capacity(net)
    except (ValueError, RuntimeError) as e:
        _fail(str(e))
        return
    if as_json:
        print(json.dumps(jsonable(rep.to_dict()), indent=2))
        return
    console.print(f"[bold]{sc.name or scenario}[/]: {_n(len(net.engines), 'engine', 'engines')}, "
                  f"{_n(len(net.classes), 'job class', 'job classes')}",
                  highlight=False)
    for e in rep.engines:
        console.print(f"  engine {e['name']}: capacity {e['capacity_tokens_per_s']:.6g} tokens/s, load "
                      f"{e['load_tokens_per_s']:.6g} tokens/s, rho {e['rho']:.4f}; {e['policy']}", highlight=False)
    for c in rep.classes:
        console.print(f"  class {c['name']}: {c['arrival_rate']:.6g} jobs/s ({c['workflow']}, "
                      f"{c['mean_visits_per_job']:.4g} visits per job); at most {c['max_arrival_rate']:.6g} jobs/s "
                      f"with the others scaled alike", highlight=False)
    console.print("verdict:" + (f" [bold]{rep.stable}[/]" if rep.stable else ""))
    for line in rep.verdict:
        console.print(f"  - {line}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``llmqueue fluid``."""

    @app.command("fluid")
    def fluid(scenario: str = typer.Argument(..., help="Network scenario YAML file or built-in name."),
              as_json: bool = typer.Option(False, "--json", help="Print the prediction as JSON."),
              horizon_units: float = typer.Option(40.0, "--horizon-units",
                                                  help="Horizon, in drain times of one unit of fluid."),
              ) -> None:
        """Fluid model of a network scenario: does its rule drain or diverge (one unit of fluid in each buffer)?"""
        if not is_network_scenario(scenario):
            _fail(f"{scenario}: not a network scenario (a YAML file with a top-level 'network' key)")
        _, net = _load(scenario)
        try:
            fv = fluid_verdict(net, horizon_units=horizon_units)
        except ValueError as e:
            _fail(str(e))
            return
        if as_json:
            print(json.dumps(jsonable(fv.to_dict()), indent=2))
            return
        console.print(f"fluid model: [bold]{fv.verdict}[/] (unit {fv.unit_tokens:.6g} tokens, horizon "
                      f"{fv.horizon_s:.6g} s)", highlight=False)
        for lab, case in fv.cases.items():
            detail = (f"drains by {case['drain_time_s']:.6g} s" if case["outcome"] == "drains" else
                      f"{case['outcome']}: future work x{case.get('final_work_ratio', float('nan')):.3g}, "
                      f"trend {case.get('growth_tokens_per_s', float('nan')):+.4g} tokens/s")
            console.print(f"  from one unit in {lab}: {detail}", highlight=False)
