"""The truncated regime: only the first ``s`` decoders (FCFS) fit in a batch.

All four built-in policies give decode tokens to decode-eligible requests in FCFS (admission)
order, "while budget and k_max allow". When that cap ``s`` is smaller than the number of
decoders, the served set is the FCFS prefix of the decoders. The core keeps it as two groups:

* ``A``, on the decode clock (see :mod:`.state`): served at every decode step, completions
  bucketed by step. ``a_order`` lists A's admission indices in order (completed ones are
  dropped lazily), so that A's last member can be found;
* ``W``, a heap of admission indices, each frozen with its tokens left (``wleft``).

Before each decode step :func:`adjust` makes A the ``s`` earliest decoders, moving requests
between the groups one at a time; its cost is the number of moves, so a batch whose decode
part keeps its size costs nothing, and a changing one costs what changed (at most a batch).
A request that leaves A keeps its first and last token times (``ftok``, ``ltok``); when it comes
back, the gap between its last token and its next one is an irregular inter-token gap, queued
in ``gaps`` and valued once that step's end time is known.

The regime is entered on demand (``a_order`` is built from the live decoders in one numpy
pass) and left after a run of steps in which nobody waited, so steady states with spare budget
pay nothing for it.
"""

from __future__ import annotations

from bisect import insort
from heapq import heappop, heappush

import numpy as np

from .feed import RequestFeed
from .state import CoreState

#: Decode steps in a row without waiting decoders after which the regime is left.
CALM_STEPS = 64


def live_decoders(S: CoreState, F: RequestFeed, G: int) -> list[int]:
    """Admission indices of A (decoders on the clock at step ``G``), in order."""
    n = S.ai - F.abase
    fin = np.frombuffer(F.fin, dtype=np.int64, count=n)
    out = (np.flatnonzero(fin > G) + F.abase).tolist()
    del fin
    return out


def _demote_max(S: CoreState, F: RequestFeed, G: int) -> int:
    """Move A's last member to W; return -1 if it had joined A at this step (was fresh), else 0."""
    a, fin, ab = S.a_order, F.fin, F.abase
    while True:
        i = a.pop()
        f = fin[i - ab]
        if f > G:
            break
    c = S.ecnt[f] - 1
    if c:
        S.ecnt[f] = c
    else:
        del S.ecnt[f]
    e = S.seg.get(i)
    if e is None:
        e = f - F.dec[i - ab]
    fin[i - ab] = -1
    S.wleft[i] = f - G
    heappush(S.W, i)
    if G > e:                      # served in this stay in A
        gb = S.gbase
        if i not in S.ftok:
            S.ftok[i] = S.decend[e + 1 - gb]
        S.ltok[i] = S.decend[G - gb]
        return 0
    return -1


def _promote_min(S: CoreState, F: RequestFeed, G: int, append: bool) -> None:
    """Move W's first member to A (it is served from step G + 1 on)."""
    i = heappop(S.W)
    f = G + S.wleft.pop(i)
    F.fin[i - F.abase] = f
    S.ecnt[f] = S.ecnt.get(f, 0) + 1
    S.seg[i] = G
    t = S.ltok.get(i)
    if t is not None:
        S.gaps.append((G + 1, t))
    a = S.a_order
    if append or not a or i > a[-1]:
        a.append(i)
    else:
        insort(a, i)


def _max_a(S: CoreState, F: RequestFeed, G: int) -> int:
    a, fin, ab = S.a_order, F.fin, F.abase
    while fin[a[-1] - ab] <= G:    # completed: drop lazily
        a.pop()
    return a[-1]


def adjust(S: CoreState, F: RequestFeed, s: int, G: int, nA: int, nW: int,
           fresh: int) -> tuple[int, int, int]:
    """Make A the ``s`` earliest decoders before a decode step; returns (nA, nW, fresh)."""
    if not S.trunc:
        S.a_order = live_decoders(S, F, G)
        S.trunc = True
        S.calm = 0
    W = S.W
    while nA > s:                                  # shrink: A's last members wait
        fresh += _demote_max(S, F, G)
        nA -= 1
        nW += 1
    while W and nA and W[0] < _max_a(S, F, G):     # swap: an earlier decoder waits in W
        fresh += _demote_max(S, F, G)
        _promote_min(S, F, G, append=False)
        fresh += 1
    while nA < s and W:                            # grow: W's first members join
        _promote_min(S, F, G, append=True)
        nA += 1
        nW -= 1
        fresh += 1
    a = S.a_order
    if len(a) > 2 * nA + 64:
        fin, ab = F.fin, F.abase
        a[:] = [i for i in a if fin[i - ab] > G]
    return nA, nW, fresh


def head_request(S: CoreState, F: RequestFeed, G: int, C: int, h: int, qa: int) -> tuple[int, int]:
    """(request id, prompt tokens left) of the earliest request in the system (stall message)."""
    cand = []
    if qa > h:
        cand.append((F.padm[h - F.qbase], F.cums[h + 1 - F.qbase] - C))
    dec = live_decoders(S, F, G)
    if dec:
        cand.append((dec[0], 0))
    if S.W:
        cand.append((S.W[0], 0))
    i, left = min(cand)
    return F.rid[i - F.abase], left
