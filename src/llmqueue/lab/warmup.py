"""Warm-up (initial transient) detection with MSER-5 (White 1997; Franklin and White 2008).

A run starts from an empty system, so its first stretch is not representative. MSER-5 averages
the series in batches of 5 and discards the d first batches that minimise the marginal standard
error of what remains, sum_{j>d} (Z_j - mean)^2 / (J - d)^2. The search is limited to the first
half of the run (the rule's usual guard): when the minimum sits at that cap the series has no
steady level, which is what a growing backlog looks like, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BATCH = 5


@dataclass(frozen=True)
class Warmup:
    """The chosen truncation point and how it was chosen."""

    time_s: float
    method: str          # "mser-5", "mser-5 (capped at half the run)" or "fixed"

    @property
    def capped(self) -> bool:
        return "capped" in self.method


def mser5(times: np.ndarray, values: np.ndarray) -> Warmup:
    """MSER-5 on a series sampled at equally spaced ``times``; returns the warm-up time."""
    values = np.asarray(values, dtype=float)
    times = np.asarray(times, dtype=float)
    if values.shape != times.shape or values.size < 4 * BATCH:
        raise ValueError("MSER-5 needs at least 20 equally spaced samples")
    j = values.size // BATCH
    z = values[: j * BATCH].reshape(j, BATCH).mean(axis=1)
    # suffix sums give every candidate truncation in one pass
    s1 = np.cumsum(z[::-1])[::-1]
    s2 = np.cumsum((z * z)[::-1])[::-1]
    d = np.arange(j // 2 + 1)
    k = j - d
    sse = s2[d] - s1[d] ** 2 / k
    crit = np.maximum(sse, 0.0) / k.astype(float) ** 2
    best = int(np.argmin(crit))
    capped = best == d[-1] and best > 0
    t = float(times[best * BATCH])
    return Warmup(t, "mser-5 (capped at half the run)" if capped else "mser-5")
