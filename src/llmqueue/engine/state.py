"""The read-only view of an engine that scheduling policies see.

The engine core (:mod:`llmqueue.engine.core`) owns one :class:`RequestState` per request in the
system and is the only code that changes it (through the methods below, and
:func:`~llmqueue.engine.progress.apply_plan` in its hot loop); policies read it through
properties only. Copying nothing keeps the cost
of a scheduling decision proportional to what the policy itself looks at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .request import Request


class RequestState:
    """Progress of one request inside an engine (read-only for policies)."""

    __slots__ = ("_request", "_prefill_left", "_decode_left", "_seq")

    def __init__(self, request: Request, seq: int) -> None:
        self._request = request
        self._prefill_left = request.prompt_tokens
        self._decode_left = request.decode_tokens
        self._seq = seq

    @property
    def request(self) -> Request:
        return self._request

    @property
    def request_id(self) -> int:
        return self._request.request_id

    @property
    def arrival_time(self) -> float:
        return self._request.arrival_time

    @property
    def job_class(self) -> str:
        return self._request.job_class

    @property
    def prefill_left(self) -> int:
        """Prompt tokens not yet processed (p_i in the spec)."""
        return self._prefill_left

    @property
    def decode_left(self) -> int:
        """Decode tokens not yet processed."""
        return self._decode_left

    @property
    def decode_eligible(self) -> bool:
        """Prefill done and decode left: may take one decode token in the next batch."""
        return self._prefill_left == 0 and self._decode_left > 0

    @property
    def demand(self) -> int:
        """Most tokens this request can take in one batch: p_i, or 1 when decode-eligible."""
        return self._prefill_left if self._prefill_left > 0 else (1 if self._decode_left > 0 else 0)

    @property
    def context_tokens(self) -> int:
        """Tokens already in this request's KV cache (processed prompt plus generated)."""
        r = self._request
        return (r.prompt_tokens - self._prefill_left) + (r.decode_tokens - self._decode_left)

    @property
    def order(self) -> int:
        """Admission order into the engine (FCFS rank; smaller is earlier)."""
        return self._seq

    # -- progress: called by the engine core only (llmqueue.engine), never by policies -------
    def start_at(self, prefill_done: int) -> None:
        """Enter the engine with ``prefill_done`` prompt tokens already processed (profiling)."""
        if not 0 <= prefill_done <= self._prefill_left:
            raise ValueError(f"request {self.request_id}: prefill_done {prefill_done} exceeds its prompt")
        self._prefill_left -= prefill_done

    def skip_prefill(self, tokens: int) -> None:
        """``tokens`` prompt tokens come from the prefix cache: they are not computed."""
        self._prefill_left -= tokens

    def requeue(self, tokens: int) -> None:
        """Preempted by recomputation: the ``tokens`` in its dropped KV cache (processed prompt
        and generated tokens) are prefilled again before it goes on."""
        self._prefill_left += tokens

    @classmethod
    def make(cls, request: Request, seq: int, prefill_left: int | None = None,
             decode_left: int | None = None) -> RequestState:
        """Build a state at an arbitrary point of progress (tests, checkers, what-if analysis)."""
        s = cls(request, seq)
        if prefill_left is not None:
            if not 0 <= prefill_left <= request.prompt_tokens:
                raise ValueError("prefill_left out of range")
            s._prefill_left = prefill_left
        if decode_left is not None:
            if not 0 <= decode_left <= request.decode_tokens:
                raise ValueError("decode_left out of range")
            s._decode_left = decode_left
        return s

    def __repr__(self) -> str:
        return (f"RequestState({self._request.name}: prefill_left={self._prefill_left}, "
                f"decode_left={self._decode_left})")


@dataclass(frozen=True)
class EngineView:
    """What a policy sees at an iteration boundary.

    ``requests`` holds every request in the engine that still has work, in FCFS order
    (arrival order into this engine). ``free_kv_tokens`` is None when memory is not modelled.
    """

    now: float
    requests: Sequence[RequestState]
    free_kv_tokens: int | None = None

    @property
    def demand(self) -> int:
        """D = sum_i (p_i + 1{p_i = 0 and decode left}): tokens the present requests could take."""
        return sum(s.demand for s in self.requests)

    def by_id(self) -> dict[int, RequestState]:
        return {s.request_id: s for s in self.requests}
