"""One sweep point: simulate a configuration at one rate and seed, and judge its stability.

:func:`run_point` is what every backend executes. It is a pure function of its arguments (the
scenario payload and the point's parameters), so a point gives the same row on any worker,
process or node. When the verdict is inconclusive and ``max_horizon_s`` allows, the point is
simulated again with twice the horizon (same seed), until it is decided or the cap is reached;
the row records the horizon that was finally used.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from ..config import ScenarioError, check_runnable
from ..run import simulate_scenario
from ..sim import EngineStalled
from .config import build_scenario, rate_overrides
from .growth import GrowthEstimate, estimate_run
from .paths import RunPath
from .reference import reference
from .verdict import UNSTABLE, Verdict, compare_fluid, decide, tolerance_tokens

#: Parameters a point is made of (and hashed on), in table order.
PARAM_KEYS = ("stage", "policy", "token_budget", "max_batch_size", "rate", "rate_rel", "seed",
              "horizon_s", "max_horizon_s", "warmup", "tolerance", "confidence", "batches")

LATENCY_KEYS = tuple(f"p{p}_{m}_ms" for m in ("ttft", "itl", "e2el") for p in (50, 90, 99))


def point_id(params: dict) -> str:
    """A stable id of a point's parameters (floats in repr precision)."""
    blob = json.dumps({k: params[k] for k in PARAM_KEYS}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def engine_overrides(params: dict) -> dict[str, Any]:
    from .config import DELETE
    k = params["max_batch_size"]
    return {"engine.policy": params["policy"], "engine.token_budget": int(params["token_budget"]),
            "engine.max_batch_size": DELETE if k is None else int(k)}


def _estimate_fields(est: GrowthEstimate) -> dict:
    return {"slope": est.slope, "slope_lo": est.lo, "slope_hi": est.hi, "slope_se": est.std_error,
            "slope_dof": est.dof, "slope_method": est.method, "warmup_s": est.warmup_s,
            "warmup_method": est.warmup_method, "window_s": est.window_s,
            "throughput_tokens_per_s": est.throughput, "offered_tokens_per_s": est.offered}


def estimate_from_row(row: dict) -> GrowthEstimate:
    """Rebuild the growth estimate stored in a row (for pooling replications)."""
    return GrowthEstimate(slope=row["slope"], lo=row["slope_lo"], hi=row["slope_hi"],
                          std_error=row["slope_se"], dof=int(row["slope_dof"]), method=row["slope_method"],
                          warmup_s=row["warmup_s"], warmup_method=row["warmup_method"],
                          window_s=row["window_s"], throughput=row["throughput_tokens_per_s"],
                          offered=row["offered_tokens_per_s"], confidence=row["confidence"])


def _stalled_row(ref, rate: float, tol: float, message: str) -> dict:
    offered = ref.offered_tokens(rate)
    nan = math.nan
    fields = {"slope": offered, "slope_lo": nan, "slope_hi": nan, "slope_se": nan, "slope_dof": 0,
              "slope_method": "engine stalls", "warmup_s": 0.0, "warmup_method": "none", "window_s": 0.0,
              "throughput_tokens_per_s": 0.0, "offered_tokens_per_s": offered}
    v = Verdict(UNSTABLE, tol, f"unstable: the engine can never form a batch ({message})")
    return {**fields, "verdict": v.verdict, "verdict_reason": v.reason, "tolerance_tokens_per_s": tol,
            "needed_horizon_s": nan, "needed_replications": nan, "num_iterations": 0, "completed": 0,
            "in_system_at_end": nan, "final_backlog_tokens": nan, **{k: nan for k in LATENCY_KEYS}}


def simulate_point(payload: dict, base: str, params: dict, horizon: float):
    """The scenario of a point and one simulation of it; returns (scenario, SimResult)."""
    sc = build_scenario(payload, base, {**engine_overrides(params), **rate_overrides(params["rate"], horizon)})
    wl = sc.build_workload()
    check_runnable(sc, wl)
    return sc, simulate_scenario(sc, wl.requests(int(params["seed"])), horizon=horizon)


def run_point(payload: dict, base: str, params: dict) -> dict:
    """Simulate one point (escalating the horizon while inconclusive) and return its table row."""
    sc = build_scenario(payload, base, {**engine_overrides(params), **rate_overrides(params["rate"], 1.0)})
    ref = reference(sc)
    has_memory = sc.single_specs()[0].memory is not None
    rate = float(params["rate"])
    tol = tolerance_tokens(ref.offered_tokens(rate), params["tolerance"])
    fluid = ref.fluid_slope(rate)
    base_row = {"point_id": point_id(params), **{k: params[k] for k in PARAM_KEYS},
                "lambda_star": ref.lambda_star, "lambda_star_source": ref.source,
                "rho": rate / ref.lambda_star,
                "capacity_tokens_per_s": ref.capacity_tokens_per_s, "fluid_slope": math.nan if fluid is None else fluid}
    horizon = float(params["horizon_s"])
    cap = max(horizon, float(params["max_horizon_s"]))
    while True:
        try:
            _, res = simulate_point(payload, base, params, horizon)
        except (ScenarioError, EngineStalled) as e:
            row = _stalled_row(ref, rate, tol, str(e))
            row.update(horizon_used_s=horizon, fluid_line=max(0.0, fluid) if fluid is not None else math.nan,
                       fluid_in_ci=False)
            if has_memory:
                row["preemptions"] = 0
            return {**base_row, **row}
        path = RunPath.from_result(res, horizon)
        est = estimate_run(path, params["warmup"], int(params["batches"]), float(params["confidence"]))
        verdict = decide(est, tol, horizon)
        if verdict.verdict != "inconclusive" or 2 * horizon > cap * (1 + 1e-12):
            break
        horizon *= 2
    s = res.summary()
    row = {**_estimate_fields(est), "verdict": verdict.verdict, "verdict_reason": verdict.reason,
           "tolerance_tokens_per_s": tol,
           "needed_horizon_s": math.nan if verdict.needed_horizon_s is None else verdict.needed_horizon_s,
           "needed_replications": math.nan if verdict.needed_replications is None else verdict.needed_replications,
           "horizon_used_s": horizon, "num_iterations": s["num_iterations"], "completed": s["completed"],
           "in_system_at_end": s["in_system_at_end"], "final_backlog_tokens": s["final_backlog_tokens"],
           **{k: (math.nan if s.get(k) is None else s[k]) for k in LATENCY_KEYS}}
    if has_memory:   # the column exists in sweeps of scenarios with memory only
        row["preemptions"] = int(s["preemptions"])
    if fluid is not None:
        fc = compare_fluid(est, fluid)
        row.update(fluid_line=fc.fluid_line, fluid_in_ci=fc.in_ci)
    else:
        row.update(fluid_line=math.nan, fluid_in_ci=False)
    return {**base_row, **row}
