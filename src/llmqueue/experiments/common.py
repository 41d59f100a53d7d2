"""What every reproduction shares: parallel runs, one trajectory worker, and the result file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

from ..config import ScenarioError, check_runnable
from ..lab.config import DELETE, build_scenario, load, rate_overrides, scenario_payload
from ..lab.growth import estimate_run
from ..lab.paths import RunPath
from ..lab.reference import reference
from ..lab.verdict import compare_fluid, decide, tolerance_tokens
from ..lab.workers import end_pool, process_pool
from ..run import simulate_scenario
from ..sim import EngineStalled
from ..sim.manifest import write_text
from ..sim.output import jsonable

RESULT = "result.json"


def pmap(fn: Callable, arglist: list[tuple], workers: int | None = None,
         progress: Callable[[int, int], None] | None = None) -> list:
    """``[fn(*args) for args in arglist]`` on worker processes, results in input order;
    ``progress(done, total)`` is called as runs finish."""
    n = len(arglist)
    workers = min(workers or os.cpu_count() or 1, n)
    if workers <= 1:
        out = []
        for a in arglist:
            out.append(fn(*a))
            if progress is not None:
                progress(len(out), n)
        return out
    pool = process_pool(workers)    # workers that never outlive this process
    try:
        futs = [pool.submit(fn, *a) for a in arglist]
        if progress is not None:
            for k, _ in enumerate(as_completed(futs), 1):
                progress(k, n)
        results = [f.result() for f in futs]
    except BaseException:             # an interrupt or a failed task: end the workers now
        end_pool(pool)
        raise
    pool.shutdown(wait=True)
    return results


def scenario_args(name: str) -> tuple[dict, str]:
    sc, base = load(name)
    return scenario_payload(sc), base


def engine(policy: str, budget: int, kmax: int | None = None) -> dict[str, Any]:
    return {"engine.policy": policy, "engine.token_budget": budget,
            "engine.max_batch_size": DELETE if kmax is None else kmax}


def trajectory(payload: dict, base: str, overrides: dict, rate: float, seed: int, horizon: float,
               tolerance: float = 0.01, grid: int = 600) -> dict:
    """One run: backlog and number in system on an even grid, growth estimate and verdict.

    A configuration that can never form a batch gives ``{"stalled": message}`` instead.
    """
    sc = build_scenario(payload, base, {**overrides, **rate_overrides(rate, horizon)})
    wl = sc.build_workload()
    try:
        check_runnable(sc, wl)
        res = simulate_scenario(sc, wl.requests(seed), horizon=horizon)   # with engine.memory when set
    except (ScenarioError, EngineStalled) as e:
        return {"stalled": str(e)}
    ref = reference(sc)
    path = RunPath.from_result(res, horizon)
    t = path.grid(grid)
    est = estimate_run(path)
    v = decide(est, tolerance_tokens(ref.offered_tokens(rate), tolerance), horizon)
    fluid = ref.fluid_slope(rate)
    out = {"t": t.tolist(), "backlog": path.backlog(t).tolist(), "in_system": path.in_system(t).tolist(),
           "estimate": est.to_dict(), "verdict": v.to_dict(), "lambda_star": ref.lambda_star,
           "rho": rate / ref.lambda_star, "fluid_slope": fluid, "summary": jsonable(res.summary().to_dict())}
    if fluid is not None:
        out["fluid"] = compare_fluid(est, fluid).to_dict()
    return out


def write_result(out: Path, experiment: str, findings: list[str], numbers: dict, figures: list[Path],
                 seconds: float) -> dict:
    """result.json: what was found (sentences), the plotted numbers and the figures; the run time
    is returned beside them but not written (the same seed gives the same bytes)."""
    out.mkdir(parents=True, exist_ok=True)
    result = save_result(out, {"experiment": experiment, "findings": findings,
                               "figures": [Path(f).name for f in figures], "numbers": jsonable(numbers)})
    return {**result, "seconds": round(seconds, 2)}


def save_result(out: Path, result: dict) -> dict:
    """Write ``result`` as ``out``/result.json (indented, atomically) and return it."""
    write_text(out / RESULT, json.dumps(result, indent=2) + "\n")
    return result
