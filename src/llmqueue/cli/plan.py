"""``llmqueue plan``: which configuration serves a workload within latency SLOs at the lowest cost."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import options as opt
from .output import err_console, fail
from .output import wide_console as console


def plan(
    scenario: Optional[str] = typer.Argument(None, help=opt.SCENARIO_HELP),
    slo: list[str] = typer.Option([], "--slo", help="A latency SLO NAME=MS, NAME as in the summary: "
                                  "p99_ttft_ms, p90_tpot_ms, mean_e2el_ms, ... (repeatable)."),
    attainment: Optional[float] = typer.Option(None, "--attainment", help="Share of requests that must meet "
                                               "every SLO (the bounds then apply per request)."),
    grid: list[str] = typer.Option([], "--grid", help="KEY=V1,V2,... over policy, token_budget, max_batch_size, "
                                    "gpu, tp, replicas (repeatable); missing keys take the scenario's value."),
    price: list[str] = typer.Option([], "--price", help="GPU=DOLLARS per GPU-hour, over the defaults "
                                    "(a100=2.0, h100=3.5, h200=4.0, b200=6.0, l40s=1.2)."),
    target_rate: Optional[float] = typer.Option(None, "--target-rate", help="Best = the cheapest configuration "
                                                "whose goodput reaches this rate (req/s)."),
    trace: Optional[Path] = opt.trace,
    requests: int = typer.Option(4000, "--requests", help="Requests simulated per probe and seed when "
                                 "screening every configuration."),
    refine: int = typer.Option(12, "--refine", help="Contenders for the Pareto front searched again with "
                               "long runs, per round (0: screening only)."),
    refine_requests: Optional[int] = typer.Option(None, "--refine-requests", help="Requests simulated per probe "
                                                  "and seed when refining (default 400,000 on the fast core, "
                                                  "40,000 on the engine core: replicas, KV memory, vllm-v1)."),
    seeds: str = typer.Option("1", "--seeds", help="Seeds pooled at each probe: '1,2,3' or '1-3'."),
    resolution: float = typer.Option(0.01, "--resolution", help="Stop when the goodput bracket's "
                                     "high / low - 1 is at most this."),
    router: str = typer.Option("jsq", "--router", help="Router over replicas: jsq | least_tokens | "
                               "round_robin | power_of_two."),
    exact: bool = typer.Option(False, "--exact-batch-time", help="Run GPU profiles through the engine core "
                               "with the batch composition (slower) instead of a token-load table."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for plan.jsonl (resumable), "
                                       "plan_results.json, pareto.png and plan.html."),
    fresh: bool = typer.Option(False, "--fresh", "--force", help="Discard everything already in --out instead "
                               "of resuming an earlier plan there."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes (default: all cores)."),
    ray: bool = typer.Option(False, "--ray", help="Run configurations on Ray (local instance, or --address)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (with --ray)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar (none is drawn when stderr is not a "
                               "terminal either)."),
) -> None:
    """Find each configuration's goodput (highest Poisson rate meeting the SLOs) and its cost.

    Goodput is searched on the simulator below the theory's capacity: every
    configuration with short runs, then the contenders for the Pareto front with long ones. The
    table is sorted by cost per million tokens. Interrupted plans with --out resume where they stopped.
    """
    from ..lab.plan import PlanMismatch, PlanSpec, parse_grid, parse_prices, parse_slo, plan_backend, run_plan
    from ..lab.plan.output import label, measured, write_all
    from .lab_parse import int_list

    if workers is not None and workers < 1:
        fail("--workers must be >= 1")
    if target_rate is not None and not (math.isfinite(target_rate) and target_rate > 0):
        fail("--target-rate must be > 0")
    if address is not None and not ray:
        fail("--address needs --ray")
    spec = PlanSpec(scenario or "fig1", overrides=opt.overrides(trace=trace),
                    slos=dict(parse_slo(s) for s in slo), attainment=attainment, grid=parse_grid(grid),
                    prices=parse_prices(price), num_requests=requests, seeds=tuple(int_list(seeds, "--seeds")),
                    resolution=resolution, router=router, exact_batch_time=exact,
                    refine=refine, refine_requests=refine_requests)
    from ..lab.plan.goodput import build_engine
    build_engine(spec, (spec.configs() or [{}])[0])  # refuses a bad scenario, trace or grid before any worker starts
    if any(spec.prices.get(g) is None for g in spec.grid.get("gpu", [])):
        missing = [g for g in spec.grid["gpu"] if g not in spec.prices]
        fail(f"no price for {', '.join(missing)}: give --price {missing[0]}=DOLLARS_PER_HOUR")
    be = plan_backend("ray" if ray else "local", workers, address)
    t0 = time.monotonic()
    from ..lab.progress import SweepProgress
    from .progress import wanted
    from .signals import interruptible, reclaim
    reclaim()                         # Ray replaces the SIGTERM handler when it starts
    kept = (f"finished configurations are kept in {out}/plan.jsonl (the folder has no manifest until the "
            f"plan ends)" if out is not None else "nothing was written")
    try:
        with interruptible(kept, "run the same command again to resume" if out is not None else None), \
                SweepProgress(enabled=wanted(quiet), console=err_console) as progress:
            state = {"done": 0, "total": 0}

            def on_done(done: int, total: int) -> None:
                if total != state["total"]:           # the screening's searches, then each refining round's
                    progress.add(total - state["total"], resumed=done - state["done"])
                else:
                    for _ in range(done - state["done"]):
                        progress.advance()
                state.update(done=done, total=total)

            outcome = run_plan(spec, out, be, fresh=fresh, on_done=on_done, target_rate=target_rate)
    except PlanMismatch as e:
        fail(str(e))
        return
    files = []
    if out is not None:
        from ..sim.manifest import seal
        files = write_all(outcome, out)
        seal(out, "plan", scenario=spec.to_dict(), seed=None, plan_digest=spec.digest())
    if as_json:
        typer.echo(json.dumps(outcome.to_json(), indent=1))
        return
    table = Table(title="configurations by cost per million tokens")
    for col in ("configuration", "goodput req/s", "run", "p99 TTFT ms", "p99 TPOT ms", "GPUs", "$ / M tok",
                "capacity"):
        table.add_column(col)

    def f(x, fmt: str = ".4g") -> str:
        return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)
    front = {json.dumps(r["params"], sort_keys=True) for r in outcome.pareto}
    for r in outcome.rows:
        mark = " *" if json.dumps(r["params"], sort_keys=True) in front else ""
        table.add_row(label(r["params"]) + mark, f(r.get("max_rate")), "refined" if r.get("refined") else "screened",
                      f(r.get("p99_ttft_ms"), ".1f"),
                      f(r.get("p99_tpot_ms"), ".1f"), str(r.get("gpus", "")), f(r.get("cost_per_mtok"), ".3f"),
                      r.get("error") or r.get("pruned") or f(r.get("capacity")))
    console.print(table)
    b = outcome.best
    console.print("* on the Pareto front (goodput against cost); " + measured(spec, outcome.rows), highlight=False)
    console.print(f"best: {label(b['params'])}: {b['max_rate']:.4g} req/s" if b else
                  "best: no configuration meets the SLOs" + (f" at {target_rate} req/s" if target_rate else ""),
                  highlight=False)
    console.print(f"{len(outcome.rows)} configurations, {outcome.refined} refined: {outcome.computed} searches run, "
                  f"{outcome.resumed} resumed, on {be.name} ({be.workers} workers) in {time.monotonic() - t0:.1f} s",
                  highlight=False)
    if files:
        console.print(f"wrote {', '.join(str(p) for p in files)}", highlight=False)
