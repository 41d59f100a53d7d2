"""``llmqueue simulate``: run one engine (or a network, when the scenario has a ``network`` key)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options as opt
from .output import console, print_summary


def simulate(
    scenario: Optional[str] = typer.Argument(None, help=opt.SCENARIO_HELP),
    out: Optional[Path] = typer.Option(None, "--out",
                                       help="Write the requests and iterations tables and summary.json here."),
    policy: Optional[str] = opt.policy, token_budget: Optional[int] = opt.token_budget,
    max_batch_size: Optional[int] = opt.max_batch_size, request_rate: Optional[float] = opt.request_rate,
    burstiness: Optional[float] = opt.burstiness, num_requests: Optional[int] = opt.num_requests,
    duration: Optional[float] = opt.duration, seed: Optional[int] = opt.seed, trace: Optional[Path] = opt.trace,
    horizon: Optional[float] = typer.Option(None, "--horizon", help="Stop the simulation at this time (s)."),
    show_batches: int = typer.Option(0, "--show-batches", help="Print the first N batches (Fig. 8 notation)."),
    composition: bool = typer.Option(False, "--composition", help="Record which request got what (batches table)."),
    fmt: str = typer.Option("parquet", "--format", help="Tables written with --out: parquet | csv."),
    force: bool = opt.force,
) -> None:
    """Simulate one engine on a scenario and summarise throughput, backlog and latency."""
    from .signals import interruptible
    with interruptible(opt.unfinished(out)):
        _simulate(scenario, out, policy, token_budget, max_batch_size, request_rate, burstiness, num_requests,
                  duration, seed, trace, horizon, show_batches, composition, fmt, force)


def _simulate(scenario, out, policy, token_budget, max_batch_size, request_rate, burstiness, num_requests,
              duration, seed, trace, horizon, show_batches, composition, fmt, force) -> None:
    from ..config import is_network_scenario
    from ..sim.manifest import prepare_out
    if scenario is not None and is_network_scenario(scenario):
        from .network import simulate_network_scenario
        opt.refuse_flags({
            "--policy": policy, "--token-budget": token_budget, "--max-batch-size": max_batch_size,
            "--request-rate": request_rate, "--burstiness": burstiness, "--num-requests": num_requests,
            "--trace": trace, "--show-batches": show_batches, "--composition": composition}, NETWORK_FLAGS)
        if out is not None:
            prepare_out(out, force=force)
        simulate_network_scenario(scenario, out=out, seed=seed, horizon=horizon, duration=duration)
        return
    from functools import partial

    from ..analysis import workload_capacity
    from ..config import load_scenario
    from ..run import simulate_scenario
    from ..sim.output import check_format, write_run

    ov = opt.overrides(policy, token_budget, max_batch_size, request_rate, burstiness, num_requests,
                       duration, seed, trace)
    ov["simulation.horizon_s"] = horizon
    if composition or show_batches:
        ov["simulation.record_composition"] = True
    sc = load_scenario(scenario, ov)
    check_format(fmt)
    if out is not None:
        prepare_out(out, force=force)
    res = simulate_scenario(sc, out=out, format=fmt)   # refuses an unrunnable scenario first
    writer = partial(write_run, format=fmt)
    cap = workload_capacity(sc.build_policy(), sc.build_batch_time(), sc.build_workload())
    s = res.summary()
    if out is not None:
        writer(res, out, extra={"scenario": sc.model_dump(mode="json"),
                                "capacity": cap.to_dict() if cap is not None else None})
    print_summary(s, cap)
    if show_batches and res.compositions is not None:
        from ..sim.batches import format_plan
        console.print(f"\nfirst {min(show_batches, len(res.compositions))} batches:")
        for i, (plan, row) in enumerate(zip(res.compositions[:show_batches], res.iterations.itertuples())):
            console.print(f"  {i:4d}  t={row.start_time:.6g}s  {format_plan(plan, res.labels)}", highlight=False)
    if out is not None:
        console.print(f"\nwrote {out}/requests.{fmt}, iterations.{fmt}, summary.json"
                      + (f", batches.{fmt}" if res.compositions is not None else ""), highlight=False)


#: why the single-engine flags are refused for a network scenario
NETWORK_FLAGS = ("for single-engine scenarios only; a network scenario sets policies, budgets and rates "
                 "per engine and per class in its file")
