"""A read-only board of buffer backlogs: unprocessed tokens per label, per engine and network-wide.

Max-pressure policies read it at their decisions and the simulator samples it for the backlog
plots. It is kept incrementally, at the cost of one pass over each batch rather than over every
request: the simulator :meth:`registers <BacklogBoard.submitted>` each visit's tokens, and each
engine's iteration log is a :class:`TappedIterationLog` that hands the board every plan with its
end time. A plan's tokens are taken off when its iteration has ended (when a snapshot is taken
at or after the end), exactly when the engine takes them off its own ``backlog_tokens``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..engine.plan import BatchPlan
from ..sim.engine import IterationLog


class TappedIterationLog(IterationLog):
    """An iteration log that also passes every plan and its end time to ``on_plan``."""

    def __init__(self, on_plan: Callable[[float, BatchPlan], None]) -> None:
        super().__init__()
        self.on_plan = on_plan

    def add(self, start: float, end: float, plan: BatchPlan, backlog: int, in_system: int) -> None:
        super().add(start, end, plan, backlog, in_system)
        self.on_plan(end, plan)


class BacklogBoard:
    """Unprocessed tokens per (engine, label); ``snapshot(now)`` sums them per label."""

    def __init__(self, n_engines: int) -> None:
        self.per_engine: list[dict[str, int]] = [{} for _ in range(n_engines)]
        self._label: dict[int, str] = {}                 # request id -> label
        self._pending: list[tuple[float, BatchPlan] | None] = [None] * n_engines
        self._done: list[int] = []

    def tap(self, engine: int) -> TappedIterationLog:
        """The iteration log to give engine ``engine``."""
        def on_plan(end: float, plan: BatchPlan) -> None:
            self._apply(engine)            # the previous iteration has ended: a new one starts
            self._pending[engine] = (end, plan)
        return TappedIterationLog(on_plan)

    def submitted(self, engine: int, request_id: int, label: str, tokens: int) -> None:
        d = self.per_engine[engine]
        d[label] = d.get(label, 0) + tokens
        self._label[request_id] = label

    def adjuster(self, engine: int) -> Callable[[int, int], None]:
        """The engine core's ``on_backlog`` hook for engine ``engine``: a request's remaining
        tokens changed outside a step (KV memory: recomputation adds, a prefix-cache hit removes)."""
        def adjust(request_id: int, delta: int) -> None:
            d = self.per_engine[engine]
            label = self._label[request_id]
            d[label] = d.get(label, 0) + delta
        return adjust

    def completed(self, request_id: int) -> None:
        self._done.append(request_id)

    def settle(self, now: float) -> None:
        """Take off the tokens of every iteration that has ended by ``now``."""
        for i, pending in enumerate(self._pending):
            if pending is not None and pending[0] <= now:
                self._apply(i)
        for rid in self._done:
            del self._label[rid]
        self._done.clear()

    def _apply(self, i: int) -> None:
        pending = self._pending[i]
        if pending is None:
            return
        d, label, plan = self.per_engine[i], self._label, pending[1]
        for rid, n in plan.prefill:
            d[label[rid]] -= n
        for rid in plan.decode:
            d[label[rid]] -= 1
        self._pending[i] = None

    def snapshot(self, now: float) -> dict[str, int]:
        """Unprocessed tokens per label over all engines at time ``now``."""
        self.settle(now)
        total: dict[str, int] = {}
        for d in self.per_engine:
            for lab, w in d.items():
                total[lab] = total.get(lab, 0) + w
        return total
