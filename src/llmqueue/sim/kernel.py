"""A tiny discrete-event kernel: a heap of (time, priority, seq, callback).

Events at the same time run by priority, then in the order they were scheduled, so a run is
fully deterministic. The engine uses three priorities so that, at one instant, an iteration's
completions happen first, then arrivals, then the next scheduling decision (which therefore
sees every arrival at that instant).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

#: Priorities of events that share a time stamp (smaller runs first).
ITERATION_END, ARRIVAL, DECIDE = 0, 1, 2


class Kernel:
    """Simulated clock and event queue."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = 0

    def schedule(self, time: float, callback: Callable[[], None], priority: int = ARRIVAL) -> None:
        if time < self.now:
            raise ValueError(f"cannot schedule an event in the past ({time} < {self.now})")
        heapq.heappush(self._heap, (time, priority, self._seq, callback))
        self._seq += 1

    @property
    def pending(self) -> int:
        return len(self._heap)

    def peek(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run(self, until: float | None = None, stop: Callable[[], bool] | None = None) -> bool:
        """Run events in order; stop when none are left or the next is later than ``until``, or
        (``stop``, asked after every event) when ``stop()`` is true. Returns whether ``stop`` ended it."""
        heap = self._heap
        while heap:
            if until is not None and heap[0][0] > until:
                self.now = until
                return False
            time, _, _, callback = heapq.heappop(heap)
            self.now = time
            callback()
            if stop is not None and stop():
                return True
        if until is not None and until > self.now:
            self.now = until
        return False
