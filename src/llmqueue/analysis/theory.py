"""Capacity theory of one engine: Theorem 2, the fluid slope, and the k_max stability region.

Theorem 2 (spec section 2): no policy processes more than ``b_max / t(b_max)`` tokens per second
when the full batch is the most efficient one, and every work-conserving policy is stable when
``lambda * (m_p + m_d)`` is below it. Above it the backlog grows at the fluid slope
``lambda * (m_p + m_d) - b_max / t(b_max)``. With a batch-size limit the stability region is a
polygon in (prefill, decode) token rates; :func:`stability_region_scale` computes it with a
linear program over feasible batch compositions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..engine.batch_time import AffineBatchTime, BatchTimeModel
from ..policies.base import Policy


def _full_batch_time(bt: BatchTimeModel, b_max: int, m_p: float, m_d: float) -> float:
    """t of a full batch; for the affine model, a full batch with the workload's token mix.

    The affine context term is approximated: each decode token's request holds on average
    m_p + (m_d + 1) / 2 tokens, and one prefill request of m_p tokens shares the batch.
    """
    if bt.load_only:
        return bt.load_time(b_max)
    f = m_p / (m_p + m_d) if m_p + m_d > 0 else 0.0
    n_p, n_d = b_max * f, b_max * (1 - f)
    ctx = n_d * (m_p + (m_d + 1) / 2) + (m_p if n_p > 0 else 0.0)
    assert isinstance(bt, AffineBatchTime)
    return bt.c + bt.a_prefill * n_p + bt.a_decode * n_d + bt.a_context * ctx


def peak_token_rate(bt: BatchTimeModel, b_max: int, m_p: float = 1.0, m_d: float = 1.0) -> float:
    """b_max / t(b_max): tokens per second of back-to-back full batches."""
    return b_max / _full_batch_time(bt, b_max, m_p, m_d)


def best_token_rate(bt: BatchTimeModel, b_max: int) -> tuple[float, int]:
    """max over 1 <= b <= b_max of b / t(b), and the smallest load b reaching it (load-only models)."""
    loads = np.arange(1, b_max + 1)
    times = np.array([bt.load_time(int(b)) for b in loads])
    rates = loads / times
    i = int(np.argmax(rates))
    return float(rates[i]), int(loads[i])


def _batch_types(bt: BatchTimeModel, b_max: int, k_max: int) -> np.ndarray:
    """Extreme (prefill, decode) token-rate vectors of feasible batches (load-only models).

    For a load b the feasible splits form a segment: all prefill, or as many decode tokens as
    k_max allows with the rest prefill (one slot kept for the prefill request), plus pure decode
    batches when b <= k_max.
    """
    pts = []
    for b in range(1, b_max + 1):
        t = bt.load_time(b)
        pts.append((b / t, 0.0))
        nd = min(k_max - 1, b - 1)
        if nd > 0:
            pts.append(((b - nd) / t, nd / t))
        if b <= k_max:
            pts.append((0.0, b / t))
    return np.array(pts)


def stability_region_scale(bt: BatchTimeModel, b_max: int, k_max: int | None,
                           lam_p: float, lam_d: float) -> float:
    """Largest theta with theta * (lam_p, lam_d) (tokens/s) inside the stability region.

    theta > 1: strictly inside (some policy can be stable); theta < 1: no policy is stable.
    Solved as a linear program (HiGHS): time shares x_j of batch types sum to at most 1 and
    their token rates cover theta times the demand.
    """
    if lam_p < 0 or lam_d < 0 or lam_p + lam_d == 0:
        raise ValueError("token arrival rates must be >= 0 and not both 0")
    pts = _batch_types(bt, b_max, k_max if k_max is not None else b_max + 1)
    n = len(pts)
    # variables: x_1..x_n, theta; maximise theta
    c = np.zeros(n + 1)
    c[-1] = -1.0
    a_ub = np.zeros((3, n + 1))
    a_ub[0, :n], a_ub[0, -1] = -pts[:, 0], lam_p
    a_ub[1, :n], a_ub[1, -1] = -pts[:, 1], lam_d
    a_ub[2, :n] = 1.0
    from scipy.optimize import linprog  # scipy only when a k_max region is solved

    res = linprog(c, A_ub=a_ub, b_ub=[0.0, 0.0, 1.0], bounds=[(0, None)] * (n + 1), method="highs")
    if not res.success:
        raise RuntimeError(f"stability-region LP failed: {res.message}")
    return float(res.x[-1])


@dataclass
class CapacityReport:
    """Capacity, the request-rate boundary and the theory's verdict for one configuration."""

    policy: str
    batch_time: str
    token_budget: int
    max_batch_size: int | None
    mean_prompt_tokens: float
    mean_decode_tokens: float
    arrival_rate: float | None
    batch_time_full_s: float
    capacity_tokens_per_s: float          # b_max / t(b_max)
    best_tokens_per_s: float              # max_b b / t(b)
    best_load: int
    lambda_star: float                    # requests/s at the Theorem 2 boundary
    rho: float | None
    fluid_slope_tokens_per_s: float | None
    region_scale: float | None = None     # k_max only: theta of the LP
    throughput_optimal: bool = False
    stable: str | None = None             # "stable" | "unstable" | "unknown"
    verdict: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def capacity_report(policy: Policy, bt: BatchTimeModel, mean_prompt: float, mean_decode: float,
                    arrival_rate: float | None = None, max_prompt: int | None = None) -> CapacityReport:
    """Theorem 2 applied to one engine and workload, with a verdict in plain words."""
    b_max, k_max = policy.token_budget, policy.max_batch_size
    m = mean_prompt + mean_decode
    if m <= 0:
        raise ValueError("the workload has no tokens (mean prompt + mean decode is 0)")
    t_full = _full_batch_time(bt, b_max, mean_prompt, mean_decode)
    cap = b_max / t_full
    if bt.load_only:
        best, best_b = best_token_rate(bt, b_max)
    else:
        best, best_b = cap, b_max
    lam_star = cap / m
    rho = slope = None
    if arrival_rate is not None:
        rho = arrival_rate * m / cap
        slope = arrival_rate * m - cap
    rep = CapacityReport(
        policy=policy.name, batch_time=bt.describe(), token_budget=b_max, max_batch_size=k_max,
        mean_prompt_tokens=mean_prompt, mean_decode_tokens=mean_decode, arrival_rate=arrival_rate,
        batch_time_full_s=t_full, capacity_tokens_per_s=cap, best_tokens_per_s=best, best_load=best_b,
        lambda_star=lam_star, rho=rho, fluid_slope_tokens_per_s=slope)
    v = rep.verdict
    full_is_best = best <= cap * (1 + 1e-12)
    stalls = policy.whole_prefill and max_prompt is not None and max_prompt > b_max
    if stalls:
        v.append(f"{policy.name} schedules prompts whole and the workload has prompts of up to "
                 f"{max_prompt} tokens, more than the token budget {b_max}: once such a prompt is "
                 f"at the head of the queue no batch can be formed and the engine freezes. Raise "
                 f"token_budget to at least {max_prompt} or use orca or sarathi.")
        rep.stable = "unstable" if arrival_rate is not None else None
    if k_max is not None:
        if not bt.load_only:
            v.append("with max_batch_size and a non-load-only batch-time model the stability "
                     "region is not computed; Theorem 2 does not apply.")
        else:
            v.append(f"max_batch_size={k_max}: Theorem 2 does not apply; the stability region is a "
                     f"polygon in (prefill, decode) token rates (paper section 6), and work-"
                     f"conservation alone does not guarantee stability inside it.")
            if arrival_rate is not None:
                theta = stability_region_scale(bt, b_max, k_max, arrival_rate * mean_prompt,
                                               arrival_rate * mean_decode)
                rep.region_scale = theta
                if abs(theta - 1) < 1e-9:
                    v.append("the load is on the boundary of the region (critical load): only a "
                             "policy that forms exactly the boundary batches can stay bounded.")
                    rep.stable = rep.stable or "unknown"
                elif theta < 1:
                    v.append(f"the load is outside the region (scale {theta:.4f} < 1): no policy "
                             f"with this budget and k_max is stable.")
                    rep.stable = "unstable"
                else:
                    v.append(f"the load is inside the region (it could grow by a factor {theta:.4f}); "
                             f"whether {policy.name} is stable must be simulated.")
                    rep.stable = rep.stable or "unknown"
        return rep
    if not full_is_best:
        v.append(f"the full batch is not the most efficient: b={best_b} gives {best:.6g} tokens/s "
                 f"against {cap:.6g} at b_max={b_max} (for a staircase, make b0 divide the budget). "
                 f"No policy exceeds {best:.6g} tokens/s; work-conserving policies reach {cap:.6g} "
                 f"in overload.")
    if policy.work_conserving and not stalls:
        rep.throughput_optimal = full_is_best
        v.append(f"{policy.name} is work-conserving: by Theorem 2 it is stable for every arrival "
                 f"rate below lambda* = {lam_star:.6g} requests/s"
                 + (" and so throughput-optimal." if full_is_best else "."))
    elif not stalls:
        v.append(f"{policy.name} is not work-conserving (it never mixes prefill and decode in one "
                 f"batch), so Theorem 2 gives no guarantee: it can be unstable below lambda* "
                 f"(paper Fig. 1). Not throughput-optimal.")
    if arrival_rate is not None and not stalls:
        assert rho is not None and slope is not None  # set above with the arrival rate
        if rho >= 1:
            rep.stable = "unstable"
            v.append(f"rho = {rho:.4f} >= 1: unstable under every policy; the backlog grows at "
                     f"least at {max(slope, 0):.6g} tokens/s (the fluid slope).")
        elif policy.work_conserving:
            rep.stable = "stable"
            v.append(f"rho = {rho:.4f} < 1: stable.")
        else:
            rep.stable = "unknown"
            v.append(f"rho = {rho:.4f} < 1, but stability of {policy.name} is not guaranteed: simulate it.")
    return rep


def workload_capacity(policy: Policy, bt: BatchTimeModel, workload: Any) -> CapacityReport | None:
    """:func:`capacity_report` for a :class:`~llmqueue.workload.Workload` (its mean lengths, its rate
    when finite, its longest prompt), or None when it has no arriving stream (only initial requests)."""
    if workload.mean_prompt_tokens + workload.mean_decode_tokens <= 0:
        return None
    rate = workload.arrival_rate if 0 < workload.arrival_rate < float("inf") else None
    return capacity_report(policy, bt, workload.mean_prompt_tokens, workload.mean_decode_tokens, rate,
                           workload.max_prompt_tokens)
