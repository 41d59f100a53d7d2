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

import numpy as np
from scipy import stats

from .growth import GrowthEstimate, estimate_run
from .paths import RunPath

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
        return Verdict(UNSTABLE, tol, f"unstable (diverging): the backlog grows at {ci}, above the tolerance "
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


#: fewer iterations than this in the arrival phase: the run is too short to judge
MIN_ITERATIONS = 20


@dataclass(frozen=True)
class RunVerdict:
    """The verdict of one run, judged over its arrival phase: what ``simulate`` prints and
    ``report`` shows (:func:`run_verdict` is the one place it is made). ``verdict`` is None when
    the arrival phase is too short to judge."""

    window_s: tuple[float, float]        # (0, end of the arrival phase)
    drain_s: float                       # run time after the window (the drain), not analysed
    estimate: GrowthEstimate | None = None
    verdict: Verdict | None = None
    fluid: FluidComparison | None = None

    @property
    def name(self) -> str:
        return self.verdict.verdict if self.verdict is not None else "too short to judge"

    def line(self) -> str:
        """One line: the verdict over the arrival phase and why."""
        end = self.window_s[1]
        where = (f"over the arrival phase 0-{end:.4g} s"
                 + (f" (the {self.drain_s:.4g} s after the last arrival, the drain, is not analysed)"
                    if self.drain_s > 0 else ""))
        if self.verdict is None:
            return (f"verdict {where}: too short to judge (fewer than {MIN_ITERATIONS} iterations "
                    f"before the last arrival)")
        return f"verdict {where}: {self.verdict.reason}"

    def details(self) -> list[str]:
        """The warm-up, the throughput and Theorem 2's fluid line, one sentence each."""
        if self.estimate is None:
            return []
        e = self.estimate
        out = [f"Warm-up {e.warmup_s:.4g} s ({e.warmup_method}); throughput after it {e.throughput:.4g} "
               f"tokens/s."]
        if self.fluid is not None:
            f = self.fluid
            out.append(f"Theorem 2's fluid line is {f.fluid_line:+.4g} tokens/s; it is "
                       f"{'inside' if f.in_ci else 'outside'} the interval (measured minus fluid: "
                       f"{f.excess:+.4g} tokens/s).")
        return out

    def to_dict(self) -> dict:
        return {"verdict": self.name, "line": self.line(), "window_s": list(self.window_s),
                "drain_s": self.drain_s,
                "estimate": self.estimate.to_dict() if self.estimate is not None else None,
                "details": self.verdict.to_dict() if self.verdict is not None else None}


def run_verdict(path: RunPath, capacity: dict | None = None,
                tolerance: float = DEFAULT_TOLERANCE) -> RunVerdict:
    """The verdict of one run over its arrival phase (``path.arrival_end``).

    ``capacity``: the run's capacity report as a dict (``CapacityReport.to_dict()``, as in
    summary.json): its arrival rate and mean lengths give the offered token rate the tolerance
    is a fraction of (else the rate measured in the window), and its fluid slope is compared
    with the estimate (Theorem 2 applies without k_max only).
    """
    cap = capacity or {}
    end = path.arrival_end
    window, drain = (0.0, end), max(0.0, path.horizon - end)
    if end <= 0 or int(np.searchsorted(path.end_times, end, side="right")) < MIN_ITERATIONS:
        return RunVerdict(window, drain)
    est = estimate_run(path)
    rate = cap.get("arrival_rate")
    offered = (rate * (cap["mean_prompt_tokens"] + cap["mean_decode_tokens"])
               if rate and "mean_prompt_tokens" in cap else est.offered)
    v = decide(est, tolerance_tokens(offered, tolerance), end)
    fluid = None
    if cap.get("fluid_slope_tokens_per_s") is not None and cap.get("max_batch_size") is None:
        fluid = compare_fluid(est, cap["fluid_slope_tokens_per_s"])
    return RunVerdict(window, drain, est, v, fluid)
