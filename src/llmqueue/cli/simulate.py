"""``llmqueue simulate``: run one engine (or a network, when the scenario has a ``network`` key)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options as opt
from .output import console, print_json, print_summary
from .progress import progress_bar
from .verdicts import print_run_verdict, run_path


def simulate(
    scenario: Optional[str] = typer.Argument(None, help=opt.SCENARIO_HELP),
    out: Optional[Path] = typer.Option(None, "--out",
                                       help="Write the requests and iterations tables and summary.json here."),
    policy: Optional[str] = opt.policy, token_budget: Optional[int] = opt.token_budget,
    max_batch_size: Optional[int] = opt.max_batch_size, request_rate: Optional[float] = opt.request_rate,
    burstiness: Optional[float] = opt.burstiness, num_requests: Optional[int] = opt.num_requests,
    duration: Optional[float] = opt.duration, seed: Optional[int] = opt.seed, trace: Optional[Path] = opt.trace,
    trace_format: Optional[str] = opt.trace_format,
    horizon: Optional[float] = typer.Option(None, "--horizon", help="Stop the simulation at this time (s)."),
    show_batches: int = typer.Option(0, "--show-batches", help="Print the first N batches (Fig. 8 notation)."),
    composition: bool = typer.Option(False, "--composition", help="Record which request got what (batches table)."),
    fmt: str = typer.Option("parquet", "--format", help="Tables written with --out: parquet | csv."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (what --out writes to "
                                 "summary.json) instead of the text summary."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar (none is drawn "
                               "when stderr is not a terminal either)."),
    stop_when_diverging: bool = typer.Option(
        False, "--stop-when-diverging",
        help="Stop early, with the verdict 'diverging', once the backlog runs away (above 1000 full "
             "batches and still growing)."),
    force: bool = opt.force,
) -> None:
    """Simulate one engine on a scenario and summarise throughput, backlog and latency."""
    args = dict(locals())
    from .signals import interruptible
    with interruptible(opt.unfinished(out)):
        _simulate(**args)


def _simulate(*, scenario: Optional[str], out: Optional[Path], policy: Optional[str], token_budget: Optional[int],
              max_batch_size: Optional[int], request_rate: Optional[float], burstiness: Optional[float],
              num_requests: Optional[int], duration: Optional[float], seed: Optional[int], trace: Optional[Path],
              trace_format: Optional[str], horizon: Optional[float], show_batches: int, composition: bool,
              fmt: str, as_json: bool, quiet: bool, stop_when_diverging: bool, force: bool) -> None:
    from ..config import is_network_scenario
    from ..sim.manifest import prepare_out
    if scenario is not None and is_network_scenario(scenario):
        from .network import simulate_network_scenario
        opt.refuse_flags({
            "--policy": policy, "--token-budget": token_budget, "--max-batch-size": max_batch_size,
            "--request-rate": request_rate, "--burstiness": burstiness, "--num-requests": num_requests,
            "--trace": trace, "--trace-format": trace_format,
            "--show-batches": show_batches, "--composition": composition}, NETWORK_FLAGS)
        if out is not None:
            prepare_out(out, force=force)
        simulate_network_scenario(scenario, out=out, seed=seed, horizon=horizon, duration=duration, as_json=as_json,
                                  quiet=quiet, stop_when_diverging=stop_when_diverging)
        return
    import tempfile
    from functools import partial

    from ..config import load_scenario
    from ..memory.theory import combined_capacity
    from ..run import simulate_scenario
    from ..sim.output import check_format, jsonable, write_run

    ov = opt.overrides(policy, token_budget, max_batch_size, request_rate, burstiness, num_requests,
                       duration, seed, trace, trace_format)
    ov["simulation.horizon_s"] = horizon
    if composition or show_batches:
        ov["simulation.record_composition"] = True
    sc = load_scenario(scenario, ov)
    check_format(fmt)
    if out is not None:
        prepare_out(out, force=force)
    from ..sim.diverging import DivergenceRule
    from ..sim.footprint import STREAM_RECORDS_ABOVE
    stop = DivergenceRule.for_budget(sc.build_policy().token_budget) if stop_when_diverging else None
    # refuses an unrunnable scenario first; a long run without --out is streamed into a temporary folder,
    # read back once for the verdict's backlog path, then deleted
    scratch = tempfile.TemporaryDirectory(prefix="llmqueue-stream-")
    with progress_bar("simulated seconds", quiet=quiet or as_json) as progress:
        res = simulate_scenario(sc, out=out, format=fmt, stop=stop, scratch=Path(scratch.name),
                                stream_above=None if show_batches else STREAM_RECORDS_ABOVE, progress=progress)
    writer = partial(write_run, format=fmt)
    # a closed loop of sessions has no open-arrival capacity report; its arrival phase ends at its last turn
    wl = None if sc.has_sessions else sc.build_workload()
    cc = (None if wl is None
          else combined_capacity(sc.build_policy(), sc.build_batch_time(), wl, sc.build_memory(), seed=sc.seed))
    cap = cc.compute if cc is not None else None
    s = res.summary()
    path = run_path(res, wl, None if wl is None else sc.simulation.horizon_s)
    scratch.cleanup()
    extra = {"scenario": sc.model_dump(mode="json"), "capacity": cap.to_dict() if cap is not None else None,
             "combined_capacity": cc.to_dict() if cc is not None else None,
             "arrivals_until_s": path.arrivals_until,
             **({"stopped": stop.stopped.to_dict()} if stop is not None and stop.stopped else {})}
    if out is not None:
        writer(res, out, extra=extra)
    if as_json:
        print_json(jsonable(s.with_extra(extra).to_dict()))
        return
    print_summary(s, cap)
    if stop is not None and stop.stopped is not None:
        console.print(stop.verdict(), highlight=False, markup=False)
    if "sessions" in s.extra:
        x = s.extra
        console.print(f"sessions: {x['sessions']} started, {x['sessions_completed']} finished, "
                      f"{x['mean_turns_per_session']:.2f} turns each on average; session time p50 "
                      f"{x['p50_session_time_s'] or 0:.1f} s, p99 {x['p99_session_time_s'] or 0:.1f} s",
                      highlight=False)
    print_run_verdict(path, res, cc, wl)
    if show_batches and res.compositions is not None:
        from ..sim.batches import format_plan
        console.print(f"\nfirst {min(show_batches, len(res.compositions))} batches:")
        for i, (plan, row) in enumerate(zip(res.compositions[:show_batches], res.iterations.itertuples())):
            console.print(f"  {i:4d}  t={row.start_time:.6g}s  {format_plan(plan, res.labels)}", highlight=False)
    if out is not None:
        console.print(f"\nwrote {out}/requests.{fmt}, iterations.{fmt}, summary.json"
                      + (f", batches.{fmt}" if res.compositions is not None else "")
                      + (", sessions.csv" if "sessions" in s.extra else ""), highlight=False)


#: why the single-engine flags are refused for a network scenario
NETWORK_FLAGS = ("for single-engine scenarios only; a network scenario sets policies, budgets and rates "
                 "per engine and per class in its file")
