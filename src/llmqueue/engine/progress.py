"""Applying a finished iteration to the requests it served: the bookkeeping every engine shares.

The engine core (:mod:`llmqueue.engine.core`), which every driver runs, calls :func:`apply_plan`,
so a request's prefill end, first token, inter-token gaps and completion are recorded by one
piece of code whatever clock drives the engine. It changes request states directly (one
attribute per token, the hot loop of every simulation); nothing outside the engine package does.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping

from .plan import BatchPlan
from .state import RequestState

_NAN = float("nan")


class RequestTimes:
    """What an engine records for one request while it is in service (NaN: not yet)."""

    __slots__ = ("prefill_end", "first_token", "last_token")

    def __init__(self, prefill_end: float = _NAN) -> None:
        self.prefill_end, self.first_token, self.last_token = prefill_end, _NAN, _NAN


def apply_plan(plan: BatchPlan, states: Mapping[int, RequestState], times: Mapping[int, RequestTimes],
               end: float, itl: array[float]) -> list[int]:
    """Apply ``plan`` as of its end time ``end``; returns the ids of the requests it completed.

    Mutates the states (the engine owns them), records prefill ends, first tokens and the gaps
    between a request's consecutive output tokens (appended to ``itl``).
    """
    done: list[int] = []
    for rid, n in plan.prefill:
        s = states[rid]
        s._prefill_left -= n
        if s._prefill_left == 0:
            times[rid].prefill_end = end
            if s._decode_left == 0:
                done.append(rid)
    for rid in plan.decode:
        s = states[rid]
        s._decode_left -= 1
        t = times[rid]
        if t.first_token != t.first_token:  # NaN: this is the first output token
            t.first_token = end
        else:
            itl.append(end - t.last_token)
        t.last_token = end
        if s._decode_left == 0:
            done.append(rid)
    return done


def context_after(plan: BatchPlan, states: Mapping[int, RequestState]) -> int:
    """Total KV context of the batch after the step (the affine batch-time model's context term)."""
    ctx = 0
    for rid, n in plan.prefill:
        ctx += states[rid].context_tokens + n
    for rid in plan.decode:
        ctx += states[rid].context_tokens + 1
    return ctx
