"""Stable, unstable or inconclusive: a verdict from a growth-rate estimate and a tolerance.

A stable system's backlog has growth rate 0, and no finite run can prove exactly 0, so the
verdict compares the confidence interval with a tolerance: growth below ``tolerance`` times the
offered token rate (default 1%: less than one arriving token in a hundred left unprocessed) is
what "stable" means at the resolution of the run.

* stable: the whole interval lies below the tolerance;
* unstable: the whole interval lies above it;
* inconclusive: the interval contains it. The verdict then says how long a run, or how many
  replications, would separate them (intervals shrink like 1/sqrt(run length) or
  1/sqrt(replications); the advice assumes the estimate stays where it is).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import stats

from .growth import GrowthEstimate

DEFAULT_TOLERANCE = 0.01
#: No advice is given past this factor: the estimate sits (practically) on the tolerance.
MAX_FACTOR = 64.0

STABLE, UNSTABLE, INCONCLUSIVE = "stable", "unstable", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """``verdict`` (stable, unstable or inconclusive) with the tolerance it used and its reason;
    an inconclusive verdict may say how long a run (``needed_horizon_s``) or how many
    replications (``needed_replications``) would decide it."""

    verdict: str
    tolerance_tokens_per_s: float
    reason: str
    needed_horizon_s: float | None = None
    needed_replications: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def tolerance_tokens(offered_tokens_per_s: float, tolerance: float = DEFAULT_TOLERANCE) -> float:
    """The growth rate (tokens/s) below which a backlog counts as not growing."""
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be a fraction in (0, 1), got {tolerance}")
    return tolerance * offered_tokens_per_s


def _replications_needed(est: GrowthEstimate, margin: float) -> int | None:
    # pooled batch means: the standard error falls like 1/sqrt(replications)
    sd = est.std_error * math.sqrt(est.replications)
    per_run = est.dof / est.replications if est.replications > 1 else est.dof
    for n in range(2, 1001):
        if stats.t.ppf(0.5 + est.confidence / 2, max(1, int(per_run * n))) * sd / math.sqrt(n) < margin:
            return n
    return None


def decide(est: GrowthEstimate, tol: float, horizon_s: float) -> Verdict:
    """The verdict for ``est`` at tolerance ``tol`` tokens/s (``horizon_s``: the run length used)."""
    pct = f"{100 * est.confidence:g}%"
    ci = f"{est.slope:+.4g} tokens/s ({pct} CI [{est.lo:+.4g}, {est.hi:+.4g}], {est.method})"
    if est.hi < tol:
        return Verdict(STABLE, tol, f"stable: the backlog grows at {ci}, below the tolerance "
                                    f"{tol:.4g} tokens/s")
    if est.lo > tol:
        lost = est.slope / est.offered if est.offered > 0 else float("nan")
        return Verdict(UNSTABLE, tol, f"unstable: the backlog grows at {ci}, above the tolerance "
                                      f"{tol:.4g} tokens/s; {100 * lost:.3g}% of the arriving tokens "
                                      f"are not processed")
    margin = abs(est.slope - tol)
    factor = (est.half_width / margin) ** 2 if margin > 0 else math.inf
    if factor > MAX_FACTOR:
        return Verdict(INCONCLUSIVE, tol, f"inconclusive: the backlog grows at {ci}, practically at the "
                                          f"tolerance {tol:.4g} tokens/s; no reasonable run decides it "
                                          f"(change the tolerance)")
    factor *= 1.25  # margin for the estimate moving
    need_h = est.warmup_s + est.window_s * factor
    need_r = _replications_needed(est, margin)
    more = f"a horizon of about {need_h:.4g} s (now {horizon_s:.4g} s)"
    if need_r is not None:
        more += f" or about {need_r} replications of this horizon"
    return Verdict(INCONCLUSIVE, tol, f"inconclusive: the backlog grows at {ci}, and the interval "
                                      f"contains the tolerance {tol:.4g} tokens/s; {more} would decide it",
                   needed_horizon_s=need_h, needed_replications=need_r)


@dataclass(frozen=True)
class FluidComparison:
    """The measured slope beside Theorem 2's fluid line max(0, lambda (m_p + m_d) - b_max / t(b_max))."""

    fluid_slope: float          # lambda (m_p + m_d) - b_max / t(b_max), may be negative
    fluid_line: float           # max(0, fluid_slope): the work-conserving prediction
    in_ci: bool
    excess: float               # measured - fluid_line

    def to_dict(self) -> dict:
        return asdict(self)


def compare_fluid(est: GrowthEstimate, fluid_slope: float) -> FluidComparison:
    line = max(0.0, fluid_slope)
    return FluidComparison(fluid_slope, line, est.lo <= line <= est.hi, est.slope - line)
