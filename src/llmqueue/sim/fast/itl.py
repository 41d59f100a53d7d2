"""Inter-token latencies (ITL) as an exact multiset: distinct gap values and their counts.

A decode step's regular gap (its end minus the previous decode step's end) is shared by every
decoder served at both steps, so the fast core records one value and a count per step instead of
one float per token; a decoder that waited in between contributes one irregular gap. Merging
equal values keeps the memory proportional to the number of *distinct* gaps (a few per batch
size and time scale under load-only batch-time models), not to the number of tokens.

:func:`weighted_percentiles` reproduces ``np.percentile`` (linear method) on the expanded
sample exactly, with the same floating-point steps; :func:`repeated_sum` reproduces numpy's
pairwise sum of the expanded (sorted) sample, so the mean is ``np.mean`` of it to the last bit,
while at most a quarter of a million values are ever expanded at once.
"""

from __future__ import annotations

import numpy as np

from ..metrics import PERCENTILES

#: numpy's pairwise summation: blocks up to this size are summed by its unrolled loop.
_PW_BLOCK = 128


class ItlHistogram:
    """Multiset of gaps (seconds): ``add`` batches of (value, count), read back merged."""

    _COMPACT = 1 << 16

    def __init__(self) -> None:
        self._v: list[np.ndarray] = []
        self._c: list[np.ndarray] = []
        self._pending = 0

    def add(self, values: np.ndarray, counts: np.ndarray) -> None:
        keep = counts > 0
        if not keep.all():
            values, counts = values[keep], counts[keep]
        if values.size:
            self._v.append(np.asarray(values, dtype=np.float64))
            self._c.append(np.asarray(counts, dtype=np.int64))
            self._pending += values.size
            if self._pending > self._COMPACT:
                self._compact()

    def _compact(self) -> None:
        if len(self._v) > 1 or self._pending:
            v = np.concatenate(self._v) if self._v else np.empty(0)
            c = np.concatenate(self._c) if self._c else np.empty(0, dtype=np.int64)
            u, inv = np.unique(v, return_inverse=True)
            self._v = [u]
            self._c = [np.bincount(inv.ravel(), weights=c, minlength=u.size).astype(np.int64)]
            self._pending = 0

    def values_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct gaps and how often each occurs."""
        self._compact()
        if not self._v:
            return np.empty(0), np.empty(0, dtype=np.int64)
        return self._v[0], self._c[0]

    @property
    def count(self) -> int:
        return int(self.values_counts()[1].sum())

    def expand(self) -> np.ndarray:
        """Every gap, sorted (what the generic engine's ``itl`` array holds, in another order)."""
        v, c = self.values_counts()
        return np.repeat(v, c)


def weighted_percentiles(values: np.ndarray, counts: np.ndarray, qs) -> list[float]:
    """``np.percentile(np.repeat(values, counts), qs)`` for sorted ``values``, without expanding."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    quantiles = np.true_divide(np.asarray(qs, dtype=np.float64), 100)
    vi = (n - 1) * quantiles                                    # numpy's virtual index (linear)
    prev = np.floor(vi)
    gamma = vi - prev
    lo = prev.astype(np.int64)
    hi = lo + 1
    above = vi >= n - 1
    lo[above] = hi[above] = n - 1
    below = vi < 0
    lo[below] = hi[below] = 0
    a = values[np.searchsorted(cum, lo, "right")]
    b = values[np.searchsorted(cum, hi, "right")]
    diff = b - a
    out = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return [float(x) for x in out]


def repeated_sum(values: np.ndarray, counts: np.ndarray, leaf: int = 1 << 18) -> float:
    """``np.add.reduce(np.repeat(values, counts))`` exactly, without expanding it whole.

    numpy sums a contiguous float64 array pairwise: a range of more than 128 values is split at
    half its length rounded down to a multiple of 8, and the two halves' sums are added. This
    follows the same splits down to ranges of at most ``leaf`` values and lets numpy sum those
    (expanded, or, for a range of one repeated value, remembered by value and length)."""
    counts = np.asarray(counts, dtype=np.int64)
    cum = np.concatenate(([0], np.cumsum(counts)))
    n = int(cum[-1])
    memo: dict[tuple[float, int], float] = {}

    def part(lo: int, m: int) -> float:
        if m > max(leaf, _PW_BLOCK):
            half = m // 2
            half -= half % 8
            return part(lo, half) + part(lo + half, m - half)
        i = int(np.searchsorted(cum, lo, "right")) - 1
        if cum[i + 1] >= lo + m:                       # one value repeated m times
            key = (float(values[i]), m)
            if key not in memo:
                memo[key] = np.add.reduce(np.full(m, values[i], dtype=np.float64))
            return memo[key]
        j = int(np.searchsorted(cum, lo + m, "left"))
        c = counts[i:j].copy()
        c[0] -= lo - cum[i]
        c[-1] -= cum[j] - (lo + m)
        return np.add.reduce(np.repeat(np.asarray(values[i:j], dtype=np.float64), c))

    return float(part(0, n)) if n else 0.0


def itl_stats(hist: ItlHistogram) -> dict[str, float | None]:
    """mean/p50/p90/p99 of the gaps in ms, named like ``sim.metrics.latency_stats('itl')``."""
    v, c = hist.values_counts()
    out: dict[str, float | None] = {}
    n = int(c.sum())
    if n == 0:
        out["mean_itl_ms"] = None
        for p in PERCENTILES:
            out[f"p{p}_itl_ms"] = None
        return out
    out["mean_itl_ms"] = float(np.float64(repeated_sum(v, c)) / n * 1e3)
    for p, x in zip(PERCENTILES, weighted_percentiles(v, c, PERCENTILES)):
        out[f"p{p}_itl_ms"] = x * 1e3
    return out
