"""The lab's commands: ``llmqueue sweep``, ``llmqueue reproduce`` and ``llmqueue report``.

:func:`register` adds the three to the ``llmqueue`` app. Command modules import the library,
never the reverse. Every user error exits with status 2 and one message, like the rest of the
command line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .output import err_console, fail
from .output import wide_console as console
from .progress import wanted
from .report import report
from .reproduce import reproduce


def sweep(
    scenario: str = typer.Argument(..., help="Scenario YAML file or built-in name (fig1, theorem2, ...)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: sweep-<scenario name>)."),
    rates: Optional[str] = typer.Option(None, "--rates", help="Arrival rates: '0.9,1.1' or a range "
                                        "'0.6:1.4:0.1'. Multiples of lambda* unless --absolute. "
                                        "Default 0.6:1.4:0.1."),
    absolute: bool = typer.Option(False, "--absolute", help="--rates are requests/s, not multiples of lambda*."),
    policies: Optional[str] = typer.Option(None, "--policies",
                                           help="Comma-separated policies (default: the scenario's)."),
    token_budgets: Optional[str] = typer.Option(None, "--token-budgets", help="Comma-separated token budgets."),
    max_batch_sizes: Optional[str] = typer.Option(None, "--max-batch-sizes",
                                                  help="Comma-separated k_max values; 'none' for no limit."),
    seeds: Optional[str] = typer.Option(None, "--seeds",
                                        help="Seeds: '1,2,3' or '1-20' (default: the scenario's seed)."),
    horizon: Optional[float] = typer.Option(None, "--horizon",
                                            help="Simulated seconds per point (default: 8000 full batches)."),
    max_horizon: Optional[float] = typer.Option(None, "--max-horizon", help="Inconclusive points are rerun with "
                                                "doubled horizons up to this (default 4x --horizon)."),
    warmup: str = typer.Option("auto", "--warmup", help="'auto' (MSER-5) or seconds to discard."),
    tolerance: float = typer.Option(0.01, "--tolerance", help="Growth below this fraction of the offered "
                                    "token rate counts as stable."),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence level of the intervals."),
    bisect: bool = typer.Option(False, "--bisect", help="Also find each policy's maximum stable rate by bisection."),
    bisect_range: str = typer.Option("0.01:1.5", "--bisect-range", help="Search interval, in multiples of lambda*."),
    bisect_resolution: float = typer.Option(0.01, "--bisect-resolution", help="Stop when the bracket's "
                                            "high / low - 1 is at most this."),
    bisect_replications: int = typer.Option(3, "--bisect-replications", help="Seeds pooled at each probe."),
    bisect_escalations: int = typer.Option(2, "--bisect-escalations",
                                           help="Horizon doublings for an inconclusive probe."),
    bisect_horizon: Optional[float] = typer.Option(None, "--bisect-horizon",
                                                   help="Horizon of a probe (default --horizon)."),
    backend: str = typer.Option("local", "--backend", help="local (processes, default), ray, or serial."),
    workers: Optional[int] = typer.Option(None, "--workers",
                                          help="Worker processes (local) or CPUs of a local Ray instance."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: start a local Ray)."),
    fresh: bool = typer.Option(False, "--fresh", "--force", help="Discard everything already in --out (an earlier "
                               "sweep's points, tables and figures) instead of resuming."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar (none is drawn when stderr is not a "
                               "terminal either)."),
) -> None:
    """Sweep arrival rates, policies, budgets, k_max and seeds; verdicts, tables and the maximum stable rate.

    Points run in parallel; an interrupted sweep resumes when the same command is run again.
    """
    from ..lab.sweep import JOURNAL
    from .signals import interruptible

    where: dict = {"out": out}

    def kept() -> str:
        if where["out"] is None:
            return "nothing was written"
        path = Path(where["out"]) / JOURNAL
        n = path.read_bytes().count(b"\n") if path.is_file() else 0
        return f"{n} finished points are kept in {path} (no manifest yet: not a finished sweep)"

    with interruptible(kept, "run the same command again to resume"):
        _sweep(scenario, out, rates, absolute, policies, token_budgets, max_batch_sizes, seeds, horizon, max_horizon,
               warmup, tolerance, confidence, bisect, bisect_range, bisect_resolution, bisect_replications,
               bisect_escalations, bisect_horizon, backend, workers, address, fresh, quiet, where)


def _sweep(scenario, out, rates, absolute, policies, token_budgets, max_batch_sizes, seeds, horizon, max_horizon,
           warmup, tolerance, confidence, bisect, bisect_range, bisect_resolution, bisect_replications,
           bisect_escalations, bisect_horizon, backend, workers, address, fresh, quiet, where) -> None:
    from ..config import ScenarioError
    from ..lab.backends import BackendError, make_backend
    from ..lab.bisect import BisectSpec
    from ..lab.progress import SweepProgress
    from ..lab.spec import make_spec
    from ..lab.sweep import SweepMismatch, run_sweep
    from ..lab.sweep_plots import sweep_figures
    from .lab_parse import int_list, number_list

    try:
        lo_hi = number_list(bisect_range.replace(":", ","), "--bisect-range")
        if len(lo_hi) != 2:
            raise ValueError("--bisect-range is low:high, for example 0.5:1.5")
        bspec = (BisectSpec(lo_hi[0], lo_hi[1], bisect_resolution, bisect_replications, bisect_escalations,
                            bisect_horizon) if bisect else None)
        spec = make_spec(
            scenario, rates=number_list(rates, "--rates") if rates else None, relative=not absolute,
            policies=[p.strip() for p in policies.split(",") if p.strip()] if policies else None,
            token_budgets=int_list(token_budgets, "--token-budgets") if token_budgets else None,
            max_batch_sizes=int_list(max_batch_sizes, "--max-batch-sizes",
                                     allow_none=True) if max_batch_sizes else None,
            seeds=int_list(seeds, "--seeds") if seeds else None, horizon_s=horizon, max_horizon_s=max_horizon,
            warmup=warmup, tolerance=tolerance, confidence=confidence, bisect=bspec)
    except (ScenarioError, ValueError, OSError) as e:
        fail(str(e))
        return
    if workers is not None and workers < 1:
        fail("--workers must be >= 1")
    name = spec.payload.get("name") or Path(scenario).stem
    out = where["out"] = out or Path(f"sweep-{name}")
    t0 = time.monotonic()
    try:
        be = make_backend(backend, workers, address)
        from .signals import reclaim
        reclaim()                     # Ray replaces the SIGTERM handler when it starts
        try:
            with SweepProgress(enabled=wanted(quiet), console=err_console) as progress:
                outcome = run_sweep(spec, out, be, progress, fresh=fresh)
            figs = sweep_figures(outcome, spec, out)
        finally:
            be.close()
    except (SweepMismatch, BackendError) as e:
        fail(str(e))
        return
    _print_outcome(outcome, spec, time.monotonic() - t0, be.name, be.workers)
    console.print(f"wrote {', '.join(str(p) for p in outcome.files + figs)}", highlight=False)


def _num(x: float) -> str:
    return f"{x:+.0f}" if abs(x) >= 100 else f"{x:+.3g}"


def _print_outcome(outcome, spec, seconds: float, backend: str, workers: int) -> None:
    table = Table(title="verdicts (seeds pooled)")
    for col in ("config", "req/s (x lambda*)", "growth tok/s [95% CI]", "fluid", "verdict s/u/i"):
        table.add_column(col, no_wrap=col.startswith("growth"))
    for r in outcome.summary.itertuples():
        k = "" if r.max_batch_size is None or str(r.max_batch_size) == "<NA>" else f" k{r.max_batch_size}"
        ci = "" if r.slope_lo != r.slope_lo else f" [{_num(r.slope_lo)}, {_num(r.slope_hi)}]"
        fl = "" if r.fluid_line != r.fluid_line else f"{r.fluid_line:.4g}"
        counts = f"{r.seeds_stable}/{r.seeds_unstable}/{r.seeds_inconclusive}"
        table.add_row(f"{r.policy} b{r.token_budget}{k}", f"{r.rate:.4g} ({r.rate_rel:.3g}x)",
                      f"{_num(r.slope)}{ci}", fl, f"{r.verdict} {counts}")
    console.print(table)
    for key, res in outcome.results.items():
        pol, b, k = key
        console.print(f"[bold]{pol}[/] (budget {b}{'' if k is None else f', k_max {k}'}): {res.describe()}",
                      highlight=False)
    console.print(f"{outcome.computed} points computed, {outcome.resumed} resumed, on {backend} "
                  f"({workers} workers) in {seconds:.1f} s", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the lab's commands to the ``llmqueue`` app."""
    app.command("sweep")(sweep)
    app.command("reproduce")(reproduce)
    app.command("report")(report)
