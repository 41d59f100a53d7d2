"""Backlog growth rate (unprocessed tokens per second) with a confidence interval.

The estimate is the net input rate over the window after the warm-up,
``(B(T) - B(t_w)) / (T - t_w)``, where T is the end of the arrival phase
(:attr:`~llmqueue.lab.paths.RunPath.arrival_end`: the last arrival, or the horizon when arrivals
outlast it; the drain after the last arrival is not part of the window): tokens that arrived
in the window and were not processed. It is exactly what Theorem 2's fluid slope predicts
(arrival token rate minus processing rate).

Confidence intervals:

* one run: batch means. The window is cut into ``batches`` equal pieces; their growth rates are
  averaged and a Student t interval is put on the mean. While the backlog grows its increments
  are nearly independent and the interval is accurate; for a stable backlog the increments are
  negatively correlated, so the interval is conservative (wider than needed).
* several replications (independent seeds): batch means over all the runs' batches
  (:func:`combine`), which keeps both properties.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from .paths import RunPath
from .warmup import Warmup, mser5

DEFAULT_BATCHES = 10
GRID_POINTS = 2000


@dataclass(frozen=True)
class GrowthEstimate:
    """Growth rate of the backlog in tokens/s, its confidence interval and how it was made."""

    slope: float
    lo: float
    hi: float
    std_error: float
    dof: int
    method: str
    warmup_s: float
    warmup_method: str
    window_s: float
    throughput: float        # tokens/s processed in the window
    offered: float           # tokens/s that arrived in the window
    confidence: float
    replications: int = 1

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def to_dict(self) -> dict:
        return asdict(self)


def _t(confidence: float, dof: int) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, dof))


def choose_warmup(path: RunPath, warmup: float | str | None = "auto") -> Warmup:
    """MSER-5 on the backlog sampled on an even grid, or a fixed warm-up in seconds."""
    if warmup is None or warmup == "auto":
        t = path.grid(GRID_POINTS, path.arrival_end)
        return mser5(t, path.backlog(t))
    w = float(warmup)
    if not 0 <= w < path.arrival_end:
        raise ValueError(f"warm-up must be in [0, {path.arrival_end:g}) seconds (the arrival phase), "
                         f"got {warmup!r}")
    return Warmup(w, "fixed")


def estimate_run(path: RunPath, warmup: float | str | None = "auto", batches: int = DEFAULT_BATCHES,
                 confidence: float = 0.95) -> GrowthEstimate:
    """Growth rate of one run over its arrival phase, with a batch-means confidence interval."""
    if batches < 2:
        raise ValueError(f"batches must be >= 2, got {batches}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    w = choose_warmup(path, warmup)
    t0, t1 = w.time_s, path.arrival_end
    edges = np.linspace(t0, t1, batches + 1)
    b = path.backlog(edges).astype(float)
    width = (t1 - t0) / batches
    rates = np.diff(b) / width
    slope = float((b[-1] - b[0]) / (t1 - t0))
    se = float(rates.std(ddof=1) / math.sqrt(batches))
    hw = _t(confidence, batches - 1) * se
    served = float(np.diff(path.served(np.array([t0, t1])))[0]) / (t1 - t0)
    arrived = float(np.diff(path.arrived(np.array([t0, t1])))[0]) / (t1 - t0)
    return GrowthEstimate(slope=slope, lo=slope - hw, hi=slope + hw, std_error=se, dof=batches - 1,
                          method=f"batch means ({batches} batches)", warmup_s=t0,
                          warmup_method=w.method, window_s=t1 - t0, throughput=served,
                          offered=arrived, confidence=confidence)


def combine(estimates: list[GrowthEstimate], confidence: float = 0.95) -> GrowthEstimate:
    """Pool independent replications: batch means over all their batches.

    The estimate is the mean of the per-run estimates; its variance is the mean of their
    variances divided by the number of runs, with Welch-Satterthwaite degrees of freedom. This
    is the one-run interval extended to R runs x m batches: valid while the backlog grows, and
    conservative when it is stable, like the one-run interval. A single estimate is returned as
    it is. Warm-up and window are the means over the runs.
    """
    if not estimates:
        raise ValueError("no estimates to combine")
    if len(estimates) == 1:
        return estimates[0]
    n = len(estimates)
    var = np.array([e.std_error ** 2 for e in estimates])
    dof = np.array([e.dof for e in estimates], dtype=float)
    slope = float(np.mean([e.slope for e in estimates]))
    se = float(math.sqrt(var.sum()) / n)
    df = int(math.floor(var.sum() ** 2 / np.sum(var ** 2 / dof))) if var.sum() > 0 else int(dof.sum())
    df = max(1, min(df, int(dof.sum())))
    hw = _t(confidence, df) * se
    methods = {e.warmup_method for e in estimates}
    return GrowthEstimate(
        slope=slope, lo=slope - hw, hi=slope + hw, std_error=se, dof=df,
        method=f"batch means over {n} replications", warmup_s=float(np.mean([e.warmup_s for e in estimates])),
        warmup_method=methods.pop() if len(methods) == 1 else "mixed",
        window_s=float(np.mean([e.window_s for e in estimates])),
        throughput=float(np.mean([e.throughput for e in estimates])),
        offered=float(np.mean([e.offered for e in estimates])), confidence=confidence, replications=n)
