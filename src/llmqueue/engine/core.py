"""The engine core: one LLM engine's bookkeeping and decisions, with no clock.

Every driver runs this same object: the simulated engine (:mod:`llmqueue.sim.engine`, on the
event kernel), the network simulator (one core per engine) and the real PyTorch engine's
wall-clock loop (:mod:`llmqueue.real.serve`). A driver only says *when* things happen:

- :meth:`EngineCore.add` a request that has arrived (it is seen at the next decision);
- :meth:`EngineCore.schedule` at an iteration boundary: the policy's plan on a read-only view,
  validated, then fitted into KV memory when the core has one (admission, preemption by
  recompute or swap in the policy's victim order, prefix-cache hits); returns a :class:`Step`;
- :meth:`EngineCore.duration` of the step from the batch-time model (plus swap time) when the
  driver simulates time, :meth:`EngineCore.begin` when it starts (logs the iteration);
- :meth:`EngineCore.complete` when it ends: progress, prefill end / first token / inter-token
  gaps / completion times, KV blocks freed; returns the requests that completed.

The core is the only code that changes a :class:`~llmqueue.engine.state.RequestState`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .batch_time import BatchTimeModel
from .kv import KVManager
from .kv_fit import Event, KVFit, MemorySpec
from .logs import IterationLog, RequestLog, stalled
from .plan import BatchPlan, validate_plan
from .progress import RequestTimes, apply_plan, context_after
from .request import Request
from .state import EngineView, RequestState

if TYPE_CHECKING:
    from ..errors import EngineStalled

    class Policy(Protocol):
        # read-only: the policies are frozen dataclasses, and the core never changes them
        @property
        def token_budget(self) -> int: ...
        @property
        def max_batch_size(self) -> int | None: ...

        def __call__(self, view: EngineView) -> BatchPlan: ...
        def describe(self) -> str: ...

_NAN = float("nan")


class Step:
    """One scheduled iteration: the plan that runs, and what fitting it into memory did, in
    order (``events``: ("recompute" | "swap_out", request id, KV tokens, the block table it
    held) for a preemption, ("swap_in", request id, KV tokens, None), ("hit", request id, prompt
    tokens served by the prefix cache, None)); ``swap_tokens`` moved between GPU and host
    memory. A real engine's driver replays the events on its cache before it runs the plan (a
    freed block's contents stay valid until the plan runs)."""

    __slots__ = ("plan", "events", "swap_tokens")

    def __init__(self, plan: BatchPlan, events: list[Event] | None = None, swap_tokens: int = 0) -> None:
        self.plan, self.swap_tokens = plan, swap_tokens
        self.events: list[Event] = events if events is not None else []

    @property
    def preempted(self) -> list[tuple[int, str]]:
        """(request id, "recompute" or "swap") of every preemption, in order."""
        return [(rid, "swap" if kind == "swap_out" else kind) for kind, rid, _, _ in self.events
                if kind in ("recompute", "swap_out")]

    @property
    def hits(self) -> list[tuple[int, int]]:
        return [(rid, n) for kind, rid, n, _ in self.events if kind == "hit"]


class EngineCore:
    """Requests in one engine, its policy, its optional KV memory and its logs; no clock.

    ``batch_time`` (None for a real engine, whose times are measured) gives :meth:`duration`.
    ``memory`` (None: not modelled) gives the core a KV manager (:attr:`kv`); ``kv`` passes an
    existing one instead of building it (it must match ``memory``). ``on_backlog(request_id,
    delta)`` hears of every change of a request's remaining tokens other than the steps
    themselves (recomputation adds, prefix hits remove), for drivers that keep per-request books.
    """

    def __init__(self, policy: Policy, batch_time: BatchTimeModel | None = None, *,
                 memory: MemorySpec | None = None, kv: KVManager | None = None, validate: bool = True,
                 keep_plans: bool = False, name: str = "engine",
                 request_log: RequestLog | None = None, iteration_log: IterationLog | None = None,
                 on_backlog: Callable[[int, int], None] | None = None) -> None:
        self.policy = policy
        self.batch_time = batch_time
        self.validate = validate
        self.name = name
        self.request_log = request_log if request_log is not None else RequestLog()
        self.iteration_log = iteration_log if iteration_log is not None else IterationLog(keep_plans)
        self.on_backlog = on_backlog
        self.states: dict[int, RequestState] = {}      # in admission (FCFS) order; read-only outside
        self.times: dict[int, RequestTimes] = {}
        self._seq = 0
        self.backlog_tokens = 0       # unprocessed tokens of requests in this engine
        self.tokens_arrived = 0
        self.tokens_processed = 0
        self.itl = array("d")         # every gap between consecutive output tokens of a request
        self.memory = memory
        if memory is not None:
                    self.mem: KVFit | None = KVFit(self, memory, kv)
        elif kv is not None:
            raise ValueError("a KV manager without a memory configuration")
        else:
            self.mem = None

    @property
    def kv(self) -> KVManager | None:
        """The KV manager (None without memory)."""
        return self.mem.kv if self.mem is not None else None

    @property
    def num_in_system(self) -> int:
        return len(self.states)

    # -- arrivals -----------------------------------------------------------------------------
    def add(self, request: Request, now: float, prefill_done: int = 0) -> None:
        """``request`` enters the engine at ``now``; it is seen by the next :meth:`schedule`.
        ``prefill_done`` admits it with that much of its prompt already processed (profiling)."""
        rid = request.request_id
        if rid in self.states:
            raise ValueError(f"{self.name}: request {rid} submitted twice")
        if self.mem is not None:
            self.mem.check_fits(request, self.name)
        state = RequestState(request, self._seq)
        if prefill_done:
            state.start_at(prefill_done)
        self.states[rid] = state
        self._seq += 1
        self.times[rid] = RequestTimes(now if state.prefill_left == 0 else _NAN)
        left = request.total_tokens - prefill_done
        self.backlog_tokens += left
        self.tokens_arrived += left

    def backlog_change(self, rid: int, delta: int) -> None:
        self.backlog_tokens += delta
        if self.on_backlog is not None:
            self.on_backlog(rid, delta)

    # -- one iteration ------------------------------------------------------------------------
    def view(self, now: float, requests: tuple[RequestState, ...] | None = None) -> EngineView:
        """What the policy decides on: every request with work (or ``requests``), in admission
        order, with the KV cache when memory is modelled."""
        reqs = tuple(self.states.values()) if requests is None else requests
        if self.mem is None:
            return EngineView(now=now, requests=reqs)
        return self.mem.view(now, reqs)

    def schedule(self, now: float) -> Step:
        """The step to run from boundary ``now``: the policy's plan, checked, fitted into memory.
        Its plan may be empty (see :meth:`stalled`); nothing is logged until :meth:`begin`."""
        view = self.view(now)
        plan = self.policy(view)
        if self.validate:
            validate_plan(plan, view, self.policy.token_budget, self.policy.max_batch_size, self.states)
        mem = self.mem
        if mem is None:
            return Step(plan)
        plan = mem.fit(plan, now)
        return Step(plan, mem.step_events, mem.step_swap_tokens)

    def stalled(self, now: float) -> EngineStalled:
        """The :class:`~llmqueue.errors.EngineStalled` error for an empty plan while work waits."""
        head = next(iter(self.states.values()))
        return stalled(self.name, self.policy.describe(), now, len(self.states), head.request_id,
                       head.prefill_left)

    def context_after(self, plan: BatchPlan) -> int:
        """Total KV context of the batch after the step (the affine model's context term)."""
        return context_after(plan, self.states)

    def duration(self, step: Step) -> float:
        """Seconds the iteration takes by the batch-time model, plus the time of its swaps."""
        plan, bt = step.plan, self.batch_time
        if bt is None:
            raise ValueError(f"{self.name}: no batch-time model (a real engine's times are measured)")
        if bt.load_only:
            base = bt.load_time(plan.tokens)
        else:
            base = bt.duration(plan.prefill_tokens, len(plan.decode), context_after(plan, self.states))
        if self.mem is None:
            return base
        swap_s = step.swap_tokens * self.mem.memory.swap_s_per_token
        return base + swap_s if swap_s else base

    def begin(self, step: Step, start: float, end: float) -> None:
        """Log the iteration ``[start, end]`` (and its memory columns) as it starts."""
        if self.mem is not None:
            self.mem.record()
        self.iteration_log.add(start, end, step.plan, self.backlog_tokens, len(self.states))

    def complete(self, step: Step, end: float) -> list[Request]:
        """Apply the finished step as of ``end``; returns the requests it completed (logged,
        removed, their blocks freed)."""
        plan = step.plan
        states, times = self.states, self.times
        mem = self.mem
        stepped = ({rid: states[rid] for rid in plan.request_ids()}
                   if mem is not None and mem.memory.prefix_caching else None)
        done = apply_plan(plan, states, times, end, self.itl)
        n_tokens = plan.tokens
        self.backlog_tokens -= n_tokens
        self.tokens_processed += n_tokens
        out: list[Request] = []
        for rid in done:
            s = states.pop(rid)
            t = times.pop(rid)
            self.request_log.add(s.request, t.prefill_end, t.first_token, end)
            out.append(s.request)
        if mem is not None:
            mem.after_step(plan, stepped, end)
        return out

    # -- end of run ---------------------------------------------------------------------------
    def flush_unfinished(self) -> None:
        """Log the requests still in the engine, with NaN for what has not happened."""
        for rid, s in self.states.items():
            t = self.times[rid]
            self.request_log.add(s.request, t.prefill_end, t.first_token, _NAN)
