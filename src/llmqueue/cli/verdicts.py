"""What ``simulate`` prints after the summary: how long arrivals lasted (and which limit stopped
them), what the throughputs divide by, and the run's verdict over its arrival phase, the same
line ``llmqueue report`` shows (:func:`~llmqueue.lab.verdict.run_verdict` makes both)."""

from __future__ import annotations

from typing import Any

from .output import console


def arrival_lines(path: Any, workload: Any, duration_s: float, tokens_processed: int,
                  tokens_left: int = 0) -> list[str]:
    """How the arrivals ended and what the throughputs divide by, in plain words."""
    out = []
    n = len(path.arrival_times)
    last = float(path.arrival_times[-1]) if n else 0.0
    cap_n, cap_t = getattr(workload, "num_requests", None), getattr(workload, "duration_s", None)
    if cap_n is not None and cap_t is not None:
        by_n = n >= cap_n and last < cap_t
        out.append(f"arrivals: {n} requests over 0-{last:.6g} s, stopped by "
                   + (f"num_requests = {cap_n} before duration_s = {cap_t:.6g} s was reached"
                      if by_n else f"duration_s = {cap_t:.6g} s before num_requests = {cap_n} was reached")
                   + " (the scenario sets both; arrivals stop at whichever comes first)")
    busy_end = max(float(path.end_times[-1]) if len(path.end_times) else 0.0, last)
    if tokens_left == 0 and not path.arrivals_until and duration_s > busy_end * (1 + 1e-9) and busy_end > 0:
        out.append(f"throughputs divide by the horizon {duration_s:.6g} s; the engine was idle from "
                   f"{busy_end:.6g} s to the horizon (no work left): over 0-{busy_end:.6g} s the "
                   f"token throughput is {tokens_processed / busy_end:.6g} tokens/s")
    return out


def arrivals_until(res: Any, workload: Any, horizon: float | None) -> float:
    """The horizon when the run was cut at it while the workload still had requests to come
    (the arrival phase then lasts to the horizon), else 0 (it ends at the last arrival)."""
    if horizon is None:
        return 0.0
    total = res.num_requests if hasattr(res, "num_requests") else len(res.requests)
    n = total - len(workload.initial)
    more = ((workload.num_requests is None or n < workload.num_requests)
            and (workload.duration_s is None or workload.duration_s > horizon))
    if workload.trace is not None:
        more = more and n < len(workload.trace)
    return float(horizon) if more else 0.0


def run_path(res: Any, workload: Any, horizon: float | None) -> Any:
    """The run's exact backlog path with its arrival phase set (:func:`arrivals_until`)."""
    from ..lab.paths import RunPath
    return RunPath.from_result(res, arrivals_until=arrivals_until(res, workload, horizon))


def print_run_verdict(path: Any, res: Any, cc: Any, workload: Any) -> None:
    """The arrival and throughput notes, the combined theory when memory or the prefix cache
    changes it (``cc``: a :class:`~llmqueue.memory.theory.CombinedCapacity` or None), and the
    verdict line of one simulated run."""
    from ..lab.verdict import run_verdict

    for line in arrival_lines(path, workload, float(res.end_time), int(res.tokens_processed),
                              int(res.tokens_left)):
        console.print(line, highlight=False, markup=False)
    if cc is not None and (cc.memory is not None or cc.prefix_hit_rate > 0):
        console.print(f"theory over every bound: lambda* = {cc.lambda_star:.6g} requests/s ({cc.binding} bound "
                      f"binds" + (f"; prefix-cache hit rate {cc.prefix_hit_rate:.1%} measured on the workload"
                                  if cc.prefix_hit_rate > 0 else "")
                      + (f"), rho {cc.rho:.4f}" if cc.rho is not None else ")"), highlight=False, markup=False)
    console.print(run_verdict(path, cc.compute.to_dict() if cc is not None else None).line(),
                  highlight=False, markup=False)
