"""One simulated LLM engine: the engine core (:class:`~llmqueue.engine.core.EngineCore`) driven by
the event kernel.

At every iteration boundary the driver asks the core for a step, advances the clock by the
step's duration and has the core apply it. The engine is a component on a
:class:`~llmqueue.sim.kernel.Kernel`, so the single-engine simulator and the network simulator
drive the same code; KV memory (``memory``) is the core's, not a subclass's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..engine.batch_time import BatchTimeModel
from ..engine.core import EngineCore, Step
from ..engine.logs import IterationLog, RequestLog, stalled
from ..engine.request import Request
from ..engine.state import RequestState
from ..errors import EngineStalled
from ..memory.config import MemoryConfig
from ..policies.base import Policy
from .kernel import DECIDE, ITERATION_END, Kernel

if TYPE_CHECKING:
    from ..engine.core import Policy as CorePolicy

__all__ = ["EngineStalled", "IterationLog", "RequestLog", "SimEngine", "stalled"]


class SimEngine:
    """An engine on a kernel. ``submit`` a request; ``on_complete(request, time)`` is called when it leaves.

    ``memory`` (None: not modelled) is the engine's KV cache. ``idle_wait`` (seconds, default
    None) is for policies that may idle on purpose (network max-pressure): when set, an empty
    plan while work waits makes the engine decide again after ``idle_wait`` instead of raising
    :class:`EngineStalled`. ``on_backlog`` is passed to the core.
    """

    def __init__(self, kernel: Kernel, policy: Policy, batch_time: BatchTimeModel, *,
                 memory: MemoryConfig | None = None,
                 request_log: RequestLog | None = None, iteration_log: IterationLog | None = None,
                 on_complete: Callable[[Request, float], None] | None = None,
                 validate: bool = True, name: str = "engine", idle_wait: float | None = None,
                 on_backlog: Callable[[int, int], None] | None = None) -> None:
        if idle_wait is not None and not idle_wait > 0:
            raise ValueError(f"{name}: idle_wait must be > 0 seconds, got {idle_wait!r}")
        self.kernel = kernel
        self.core = EngineCore(policy, batch_time, memory=memory, validate=validate, name=name,
                               request_log=request_log, iteration_log=iteration_log,
                               on_backlog=on_backlog)
        self.on_complete = on_complete
        self.name = name
        self.idle_wait = idle_wait
        self._busy = False            # an iteration is running or a decision is scheduled

    # -- what the core knows ------------------------------------------------------------------
    @property
    def policy(self) -> CorePolicy:
        return self.core.policy

    @policy.setter
    def policy(self, policy: CorePolicy) -> None:
        self.core.policy = policy

    batch_time = property(lambda self: self.core.batch_time)
    request_log = property(lambda self: self.core.request_log)
    iteration_log = property(lambda self: self.core.iteration_log)
    itl = property(lambda self: self.core.itl)
    backlog_tokens = property(lambda self: self.core.backlog_tokens)
    tokens_arrived = property(lambda self: self.core.tokens_arrived)
    tokens_processed = property(lambda self: self.core.tokens_processed)

    @property
    def num_in_system(self) -> int:
        return len(self.core.states)

    # -- arrivals -----------------------------------------------------------------------------
    def submit(self, request: Request, prefill_done: int = 0) -> None:
        """A request enters the engine now; it is seen at the next iteration boundary.
        ``prefill_done``: that much of its prompt is already computed (a decode engine of a
        prefill/decode split receives the prompt's KV cache)."""
        self.core.add(request, self.kernel.now, prefill_done)
        if not self._busy:
            self._busy = True
            self.kernel.schedule(self.kernel.now, self._decide, DECIDE)

    # -- one iteration ------------------------------------------------------------------------
    def _decide(self) -> None:
        core = self.core
        if not core.states:
            self._busy = False
            return
        now = self.kernel.now
        step = core.schedule(now)
        if step.plan.is_empty:
            if self.idle_wait is not None:
                self.kernel.schedule(now + self.idle_wait, self._decide, DECIDE)   # idle on purpose
                return
            raise core.stalled(now)
        end = now + core.duration(step)
        core.begin(step, now, end)
        self.kernel.schedule(end, lambda: self._finish(step), ITERATION_END)

    def _finish(self, step: Step) -> None:
        now = self.kernel.now
        done = self.core.complete(step, now)
        if self.on_complete is not None:
            for req in done:
                self.on_complete(req, now)
        self.kernel.schedule(now, self._decide, DECIDE)

    # -- end of run ---------------------------------------------------------------------------
    def flush_unfinished(self) -> None:
        """Log the requests still in the engine, with empty (NaN) times for what has not happened."""
        self.core.flush_unfinished()

    def remaining(self) -> list[RequestState]:
        return list(self.core.states.values())
