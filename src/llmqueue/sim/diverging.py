"""``--stop-when-diverging``: a stop condition that the run's own driver loop checks.

A run whose backlog runs away (load above capacity) never settles: simulating it to the end only
grows the backlog, the records and the memory. :class:`DivergenceRule` is asked, from the
driver loop that already runs the simulation (the fast core's epochs, the event kernel, the
network's sampling loop), whether to stop; it says yes once the backlog (unprocessed tokens in
the system)

* exceeds ``min_backlog_tokens`` (by default :data:`BUDGETS` full batches of the engine's token
  budget, far above what a stable engine reaches), and
* is at least ``growth`` times what it was at the last check made by 60% of the current time
  (a linear runaway grows by 1/0.6 = 1.67 or more between them; a stable engine's backlog does
  not grow with time).

The rule keeps a thinned history of (time, backlog) checks, at most :data:`HISTORY` of them, so
it costs O(1) memory. After a stop, :attr:`DivergenceRule.stopped` describes it and
:meth:`DivergenceRule.verdict` gives the line the command line prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Default threshold, in full batches: the rule fires only above BUDGETS x token budget tokens.
BUDGETS = 1000
#: The earlier check compared with is the last one made by this fraction of the current time.
EARLIER = 0.6
#: Most (time, backlog) checks remembered (older ones are thinned, every other one dropped).
HISTORY = 256


@dataclass(frozen=True)
class Stop:
    """Why a run stopped: at ``time`` the backlog was ``backlog_tokens``, ``earlier_tokens`` at
    ``earlier_time`` (at most 60% of ``time``)."""

    time: float
    backlog_tokens: float
    earlier_time: float
    earlier_tokens: float

    def to_dict(self) -> dict:
        return {"verdict": "diverging", "stopped_at_s": self.time, "backlog_tokens": self.backlog_tokens,
                "earlier_time_s": self.earlier_time, "earlier_backlog_tokens": self.earlier_tokens}


@dataclass
class DivergenceRule:
    """See the module docstring. ``check(t, backlog)`` is True once the run should stop."""

    min_backlog_tokens: float
    growth: float = 1.5
    stopped: Stop | None = None
    _history: list[tuple[float, float]] = field(default_factory=list)
    _next: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_backlog_tokens) and self.min_backlog_tokens > 0):
            raise ValueError(f"min_backlog_tokens must be a finite number > 0, got {self.min_backlog_tokens!r}")
        if not (math.isfinite(self.growth) and self.growth > 1):
            raise ValueError(f"growth must be a finite number > 1, got {self.growth!r}")

    @classmethod
    def for_budget(cls, token_budget: float, budgets: float = BUDGETS) -> DivergenceRule:
        """The default rule for engines with ``token_budget`` tokens per batch in all."""
        return cls(min_backlog_tokens=budgets * token_budget)

    def check(self, t: float, backlog: float) -> bool:
        """Whether the run should stop now (time ``t``, ``backlog`` tokens in the system).

        Cheap to call at every event: it looks at the backlog only every t/64 of simulated time."""
        if self.stopped is not None:
            return True
        if t < self._next:
            return False
        self._next = t + t / 64
        hist = self._history
        if backlog > self.min_backlog_tokens and t > 0:
            earlier = None
            for h in reversed(hist):
                if h[0] <= EARLIER * t:
                    earlier = h
                    break
            if earlier is not None and backlog >= self.growth * earlier[1]:
                self.stopped = Stop(t, backlog, earlier[0], earlier[1])
                return True
        hist.append((t, backlog))
        if len(hist) > HISTORY:
            del hist[1::2]
        return False

    def verdict(self) -> str | None:
        """The line to print after a stop (None if the run was not stopped)."""
        s = self.stopped
        if s is None:
            return None
        return (f"verdict: diverging: stopped at t = {s.time:.6g} s with a backlog of {s.backlog_tokens:.6g} "
                f"tokens (it was {s.earlier_tokens:.6g} at t = {s.earlier_time:.6g} s, and the threshold is "
                f"{self.min_backlog_tokens:.6g} tokens); the load is above what the engine serves")
