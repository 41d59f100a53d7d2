"""From one epoch of raw columns to records, vectorised; and the end-of-run flush.

The core never stamps a time on a request. Afterwards, per epoch:

* a prefill ends in the iteration whose cumulative prefill tokens first reach the request's end
  in the prefill stream (``searchsorted``);
* a decoder that never waited emits its tokens at decode steps ``fin-d+1 .. fin``, so its first
  token and completion are the end times of those steps (``decend``); one that waited carries
  its first token time and current stay in A in ``CoreState.ftok`` / ``seg``;
* the iteration's ``ic`` regular gaps all equal the step's end minus the previous step's end;
  each irregular gap (a decoder back from W) is its next step's end minus its last token.

Records go to the sink in the generic engine's order: completion time, then prefill-only
requests before decoders, then FCFS; unfinished requests last, in FCFS order.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from .core import EpochBuffer
from .feed import RequestFeed
from .itl import ItlHistogram
from .state import CoreState

I64, F64 = np.int64, np.float64


@dataclass(frozen=True)
class Snapshot:
    """Where an epoch started."""

    G: int
    C: int
    h: int
    zq: int

    @classmethod
    def of(cls, S: CoreState) -> Snapshot:
        return cls(S.G, S.C, S.h, S.zq)


def _iteration_columns(S: CoreState, F: RequestFeed, buf: EpochBuffer, snap: Snapshot,
                       completions: np.ndarray) -> dict[str, np.ndarray]:
    """The generic engine's iteration columns; ``completions`` are the epoch's completion times.

    Start: the previous end, or the arrival that ended an idle period. Requests in the batch:
    the decoders plus the prefill-stream requests whose tokens meet the iteration's range of
    stream positions. Backlog at a boundary:
    tokens of the requests arrived by then minus tokens processed before. Requests in the
    system: arrived by then minus completed before (a completion stamped with the previous
    end counts, as the generic engine removes the request before its next decision)."""
    end = np.array(buf.end, dtype=F64)
    x, s = np.array(buf.x, dtype=I64), np.array(buf.s, dtype=I64)
    n = end.size
    start = np.empty(n)
    if n:
        start[0] = buf.first_start
        start[1:] = end[:-1]
        for j, t in buf.idle:
            if j < n:
                start[j] = t
    ab = F.abase
    arrived = np.searchsorted(np.frombuffer(F.arr, dtype=F64, count=S.ai - ab), start, "right")
    c_after = snap.C + np.cumsum(x)
    cums = np.frombuffer(F.cums, dtype=I64)
    chunks = np.where(x > 0, np.searchsorted(cums, c_after, "left")
                      - np.searchsorted(cums, c_after - x, "right") + 1, 0)
    tok = x + s
    processed = S.processed + np.cumsum(tok) - tok
    backlog = np.frombuffer(F.cumtot, dtype=I64)[arrived] - processed
    done = S.completed + np.searchsorted(np.sort(completions), start, "right")
    return {"start_time": start, "end_time": end, "prefill_tokens": x, "decode_tokens": s,
            "num_requests": s + chunks, "backlog_tokens": backlog,
            "num_in_system": arrived + ab - done}


def _records(F: RequestFeed, rel: np.ndarray, ftok: np.ndarray, comp: np.ndarray) -> dict[str, np.ndarray]:
    """Record columns for window positions ``rel``."""
    take = lambda col, dt: np.frombuffer(col, dtype=dt)[rel]  # noqa: E731
    return {"request_id": take(F.rid, I64), "arrival_time": take(F.arr, F64),
            "prompt_tokens": take(F.prompt, I64), "decode_tokens": take(F.dec, I64),
            "prefill_end_time": take(F.pend, F64), "first_token_time": ftok, "completion_time": comp}


def _first_tokens_of_movers(S: CoreState, idx: np.ndarray, ftok: np.ndarray, G: int,
                            forget: bool) -> None:
    """Overwrite ``ftok`` for the requests of ``idx`` (admission indices) that once waited in W."""
    if not S.seg and not S.ftok:
        return
    keys = np.fromiter(set(S.seg) | set(S.ftok), dtype=I64)
    hit = np.flatnonzero(np.isin(idx, keys))
    gb = S.gbase
    for k in hit.tolist():
        i = int(idx[k])
        t = S.ftok.get(i)
        if t is None:
            e = S.seg.get(i)
            t = S.decend[e + 1 - gb] if e is not None and e + 1 <= G else np.nan
        ftok[k] = t
        if forget:
            S.seg.pop(i, None)
            S.ftok.pop(i, None)
            S.ltok.pop(i, None)


def finalize_epoch(S: CoreState, F: RequestFeed, buf: EpochBuffer, snap: Snapshot, sink,
                   itl: ItlHistogram) -> None:
    """Records of the requests finished in the epoch, its iteration rows and its ITL.

    A sink whose ``wants_iterations`` is False (the planner's, which needs request latencies
    only) gets no iteration rows, and the ITL histogram is not kept: the requests are the same."""
    rows = getattr(sink, "wants_iterations", True)
    ab, qb, gb = F.abase, F.qbase, S.gbase
    na = S.ai - ab
    end = np.array(buf.end, dtype=F64)
    pend = np.frombuffer(F.pend, dtype=F64)
    decend = np.frombuffer(S.decend, dtype=F64)
    # prefill ends (stream requests h0..h1-1), and requests done with their prefill
    parts = []
    if S.h > snap.h:
        ccum = snap.C + np.cumsum(np.array(buf.x, dtype=I64))
        cums = np.frombuffer(F.cums, dtype=I64)
        j = np.searchsorted(ccum, cums[snap.h + 1 - qb: S.h + 1 - qb], "left")
        adm = np.frombuffer(F.padm, dtype=I64)[snap.h - qb: S.h - qb]
        pend[adm - ab] = end[j]
        d0 = adm[np.frombuffer(F.pdec, dtype=I64)[snap.h - qb: S.h - qb] == 0] - ab
        if d0.size:
            parts.append((d0, np.zeros(d0.size, I64), np.full(d0.size, np.nan), pend[d0]))
    if S.zq > snap.zq:                     # prompt 0: prefill "ends" at arrival
        z = np.asarray(F.zidx[snap.zq - F.zbase: S.zq - F.zbase], dtype=I64) - ab
        pend[z] = np.frombuffer(F.arr, dtype=F64)[z]
    # decoders that left
    if S.G > snap.G:
        fin = np.frombuffer(F.fin, dtype=I64, count=na)
        rel = np.flatnonzero((fin > snap.G) & (fin <= S.G))
        if rel.size:
            f = fin[rel]
            ftok = decend[f - np.frombuffer(F.dec, dtype=I64)[rel] + 1 - gb]
            _first_tokens_of_movers(S, rel + ab, ftok, S.G, forget=True)
            parts.append((rel, np.ones(rel.size, I64), ftok, decend[f - gb]))
        # inter-token gaps of the epoch's decode steps
        steps = np.array(buf.s, dtype=I64) > 0
        g = np.arange(snap.G + 1, S.G + 1) - gb
        if rows:
            itl.add(decend[g] - decend[g - 1], np.array(buf.ic, dtype=I64)[steps])
        due = [(g_, t) for g_, t in S.gaps if g_ <= S.G]
        if due:
            S.gaps = [(g_, t) for g_, t in S.gaps if g_ > S.G]
            if rows:
                gg, tt = (np.array(v) for v in zip(*due))
                itl.add(decend[gg - gb] - tt, np.ones(gg.size, I64))
    comp = np.empty(0)
    if parts:
        rel, kind, ftok, comp = (np.concatenate(p) for p in zip(*parts))
        o = np.lexsort((rel, kind, comp))
        rel, ftok, comp = rel[o], ftok[o], comp[o]
        sink.add_requests(_records(F, rel, ftok, comp))
        np.frombuffer(F.done, dtype=np.uint8)[rel] = 1
    if rows:
        sink.add_iterations(_iteration_columns(S, F, buf, snap, comp))
    S.completed += comp.size
    S.processed += sum(buf.x) + sum(buf.s)


def flush_unfinished(S: CoreState, F: RequestFeed, sink) -> None:
    """Records (completion NaN) of the requests still in the system, in FCFS order."""
    ab, gb, G = F.abase, S.gbase, S.G
    na = S.ai - ab
    done = np.frombuffer(F.done, dtype=np.uint8, count=na)
    rel = np.flatnonzero(done == 0)
    if rel.size == 0:
        return
    fin = np.frombuffer(F.fin, dtype=I64)[rel]
    e = fin - np.frombuffer(F.dec, dtype=I64)[rel]
    decend = np.frombuffer(S.decend, dtype=F64)
    served = (fin > G) & (e + 1 <= G)
    ftok = np.full(rel.size, np.nan)
    ftok[served] = decend[e[served] + 1 - gb]
    _first_tokens_of_movers(S, rel + ab, ftok, G, forget=False)
    sink.add_requests(_records(F, rel, ftok, np.full(rel.size, np.nan)))
    done[rel] = 1


def drain_arrivals(S: CoreState, F: RequestFeed, t: float) -> None:
    """Admit every request that arrives by ``t`` (the horizon) without running the engine:
    the generic engine's kernel still delivers arrivals up to the horizon."""
    while True:
        ab = F.abase
        aj = bisect_right(F.arr, t, S.ai - ab) + ab
        if aj > S.ai:
            S.qa = F.pcum[aj - ab]
            S.zq = F.zbase + bisect_left(F.zidx, aj)
            S.ai = aj
        if S.ai < F.loaded or F.exhausted:
            return
        F.refill()


def first_open(S: CoreState, F: RequestFeed) -> int:
    """The first admission index whose record has not been produced (``S.ai`` if none)."""
    na = S.ai - F.abase
    if na <= 0:
        return S.ai
    done = np.frombuffer(F.done, dtype=np.uint8, count=na)
    k = int(np.argmin(done))
    return F.abase + (k if done[k] == 0 else na)


def trim_memory(S: CoreState, F: RequestFeed, min_drop: int = 1 << 15) -> None:
    """Drop decode-step end times and request columns nothing live can refer to any more."""
    keep_g = S.G - F.dmax - 1
    k = keep_g - S.gbase
    if k > min_drop:
        del S.decend[:k]
        S.gbase += k
    na = S.ai - F.abase
    done = np.frombuffer(F.done, dtype=np.uint8, count=na)
    open_ = np.flatnonzero(done == 0)
    lo = F.abase + (int(open_[0]) if open_.size else na)
    del done, open_
    if lo - F.abase > min_drop:
        F.trim(lo, S.h, S.zq)
        if S.a_order and S.a_order[0] < lo:    # completed members not yet dropped lazily
            S.a_order = [i for i in S.a_order if i >= lo]
