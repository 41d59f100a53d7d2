"""Batch compositions for ``record_composition=True``: the same :class:`BatchPlan` objects the
generic engine records, rebuilt from the fast core's state.

This visits every decoder of the batch (one numpy pass over the requests in the system), so it
costs O(batch) per iteration: meant for checks and small runs, not for long ones.
"""

from __future__ import annotations

from ...engine.plan import BatchPlan
from .decoders import live_decoders
from .feed import RequestFeed
from .state import CoreState


def batch_plan(S: CoreState, F: RequestFeed, G: int, C: int, h: int, x: int, s: int) -> BatchPlan:
    """The plan of the batch about to run: prefill chunks covering stream tokens ``(C, C + x]``
    (from stream request ``h`` on), and decode tokens for A (the first ``s`` decoders, already
    arranged by the core)."""
    ab, qb, cums, rid = F.abase, F.qbase, F.cums, F.rid
    prefill = []
    q_end = h
    while x and cums[q_end - qb] < C + x:
        q_end += 1
    for q in range(h, q_end):
        lo = max(C, cums[q - qb])
        hi = min(C + x, cums[q + 1 - qb])
        prefill.append((rid[F.padm[q - qb] - ab], hi - lo))
    decode: tuple[int, ...] = ()
    if s:
        idx = live_decoders(S, F, G)
        if len(idx) != s:
            raise AssertionError(f"fast core: {len(idx)} decoders on the clock, batch wants {s}")
        decode = tuple(rid[i - ab] for i in idx)
    return BatchPlan(prefill=tuple(prefill), decode=decode)
