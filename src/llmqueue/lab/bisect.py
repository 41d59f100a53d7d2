"""The empirical maximum stable rate of one configuration, by bisection on the verdict.

Rates are searched as multiples of lambda* inside [low, high], splitting the bracket at its
geometric midpoint sqrt(lo * hi) until hi / lo - 1 <= ``resolution``: the precision is relative,
so a policy that saturates at 4% of lambda* is located as precisely as one near lambda*, and the
cheap low rates are tried before the expensive overloaded ones. Each probe runs ``replications``
seeds at the same rate (common random numbers across probes: seed s draws the same uniforms at
every rate) and pools them into one verdict (:func:`~llmqueue.lab.growth.combine`). An
inconclusive probe is rerun with twice the horizon, up to ``escalations`` times. A probe still
inconclusive then is on neither side: it opens an *undecided zone*, and the search goes on in
both gaps, [shown stable, lowest undecided] and [highest undecided, shown unstable], until each
is within ``resolution``. The result brackets the maximum stable rate between the largest rate
shown stable and the smallest rate shown unstable, and names the undecided zone between them
(near a boundary the growth rate is close to the tolerance, and no affordable run decides it).

Only the probes that bisection needs are run: the ends of the interval are checked last, and
only when no probe fell on that side (then the bracket may stay open at that end).

The search is a generator: it yields the list of points it needs and receives their rows, so
the sweep runner can run the probes of many searches, and their replications, in parallel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field

from .growth import combine
from .point import estimate_from_row
from .verdict import INCONCLUSIVE, STABLE, UNSTABLE, decide


@dataclass(frozen=True)
class BisectSpec:
    low: float = 0.01
    high: float = 1.5
    resolution: float = 0.01
    replications: int = 3
    escalations: int = 2
    horizon_s: float | None = None      # None: the sweep's horizon

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ValueError(f"bisection needs 0 < low < high (times lambda*), got {self.low}, {self.high}")
        if not 0 < self.resolution < self.high / self.low - 1:
            raise ValueError(f"bisection resolution must be in (0, high / low - 1), got {self.resolution}")
        if self.replications < 1 or self.escalations < 0:
            raise ValueError("bisection needs replications >= 1 and escalations >= 0")


@dataclass
class Probe:
    rate_rel: float
    verdict: str
    slope: float
    lo: float
    hi: float
    horizon_s: float
    replications: int
    reason: str


@dataclass
class BisectResult:
    """Bracket of the maximum stable rate, in multiples of lambda* and in requests/s."""

    stable_rel: float | None         # largest multiple shown stable (None: none was)
    unstable_rel: float | None       # smallest multiple above it not shown stable (None: none was)
    upper_kind: str | None           # verdict at unstable_rel: "unstable", or "inconclusive" at the top end
    lambda_star: float
    probes: list[Probe] = field(default_factory=list)
    undecided_lo: float | None = None   # the undecided zone inside the bracket, if any
    undecided_hi: float | None = None

    @property
    def estimate_rel(self) -> float | None:
        """Geometric midpoint of the bracket (the end that exists when it is open)."""
        if self.stable_rel is None or self.unstable_rel is None:
            return self.stable_rel if self.unstable_rel is None else None
        return math.sqrt(self.stable_rel * self.unstable_rel)

    def describe(self) -> str:
        ls = self.lambda_star
        if self.stable_rel is None:
            assert self.unstable_rel is not None  # a search ends with at least one bracket end
            return (f"not stable even at {self.unstable_rel:.4g} lambda* ({self.unstable_rel * ls:.4g} req/s, "
                    f"{self.upper_kind}): the maximum stable rate is lower")
        if self.unstable_rel is None:
            return (f"stable up to {self.stable_rel:.4g} lambda* ({self.stable_rel * ls:.4g} req/s), the top of "
                    f"the searched interval")
        text = (f"maximum stable rate in [{self.stable_rel * ls:.4g}, {self.unstable_rel * ls:.4g}] req/s = "
                f"[{100 * (self.stable_rel - 1):+.2f}%, {100 * (self.unstable_rel - 1):+.2f}%] of lambda* "
                f"= {ls:.4g} req/s")
        if self.upper_kind != UNSTABLE:
            text += f" (upper end {self.upper_kind})"
        if self.undecided_lo is not None and self.undecided_lo == self.undecided_hi:
            text += f"; undecided at {self.undecided_lo * ls:.4g} req/s ({100 * (self.undecided_lo - 1):+.2f}%)"
        elif self.undecided_lo is not None and self.undecided_hi is not None:
            text += (f"; undecided from {self.undecided_lo * ls:.4g} to {self.undecided_hi * ls:.4g} req/s "
                     f"({100 * (self.undecided_lo - 1):+.2f}% to {100 * (self.undecided_hi - 1):+.2f}%)")
        return text

    def to_dict(self) -> dict:
        d = asdict(self)
        d["estimate_rel"] = self.estimate_rel
        d["description"] = self.describe()
        return d


Need = Generator[list[dict], list[dict], BisectResult]


def search(spec: BisectSpec, lambda_star: float, base_horizon: float,
           make_params: Callable[[float, int, float], dict], seeds: list[int]) -> Need:
    """Bisection as a generator of point requests (see the module docstring)."""
    probes: list[Probe] = []

    def probe(f: float) -> Generator[list[dict], list[dict], str]:
        horizon = base_horizon
        for attempt in range(spec.escalations + 1):
            rows = yield [make_params(f, s, horizon) for s in seeds[: spec.replications]]
            if any(r["slope_method"] == "engine stalls" for r in rows):
                r = rows[0]
                probes.append(Probe(f, UNSTABLE, r["slope"], math.nan, math.nan, horizon, len(rows),
                                    r["verdict_reason"]))
                return UNSTABLE
            est = combine([estimate_from_row(r) for r in rows], rows[0]["confidence"])
            v = decide(est, rows[0]["tolerance_tokens_per_s"], horizon)
            if v.verdict != INCONCLUSIVE or attempt == spec.escalations:
                probes.append(Probe(f, v.verdict, est.slope, est.lo, est.hi, horizon, len(rows), v.reason))
                return v.verdict
            horizon *= 2
        raise AssertionError("unreachable")

    lo, hi = spec.low, spec.high
    lo_seen = hi_seen = False
    hi_kind = UNSTABLE
    gray: list[float] = []
    while True:
        gaps = [(lo, min(gray)), (max(gray), hi)] if gray else [(lo, hi)]
        gaps = [(a, b) for a, b in gaps if b / a - 1 > spec.resolution]
        if not gaps:
            break
        a, b = max(gaps, key=lambda g: g[1] / g[0])
        mid = math.sqrt(a * b)
        v = yield from probe(mid)
        # noise can make verdicts non-monotone in the rate: a decided probe overrides what lies
        # on its far side
        if v == STABLE:
            lo, lo_seen = mid, True
            gray = [g for g in gray if g > mid]
        elif v == UNSTABLE:
            hi, hi_seen, hi_kind = mid, True, UNSTABLE
            gray = [g for g in gray if g < mid]
        else:
            gray.append(mid)
    if not lo_seen:
        v = yield from probe(lo)
        if v != STABLE:
            return BisectResult(None, min(gray + [lo]) if v == INCONCLUSIVE else lo, v, lambda_star, probes)
    if not hi_seen:
        v = yield from probe(hi)
        if v == STABLE:
            return BisectResult(hi, None, None, lambda_star, probes)
        hi_kind = v
    return BisectResult(lo, hi, hi_kind, lambda_star, probes,
                        min(gray) if gray else None, max(gray) if gray else None)
