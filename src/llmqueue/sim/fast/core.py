"""The fast core's loop: one engine, one built-in policy, iteration boundaries only.

At each boundary it admits the arrivals, forms the batch from a handful of numbers (decoders on
the clock, the prefill stream's head and prefix sums), and advances. Its cost per iteration is
O(1) plus O(1) per request whose state changes there (an admission, a prefill that ends); the
decoders are never visited (see :mod:`.state`). When the iteration changes nothing but the
clock (no arrival before its end, no prefill or decode completing), the following iterations
are identical up to the next event, and the loop emits them all in one step: their times by
the same sequential float additions the generic engine performs (``np.cumsum`` is sequential),
so times are bit-identical, not just close.

What the loop writes per iteration, into :class:`EpochBuffer`: end time, prefill tokens,
decode tokens and ``ic``, the number of regular inter-token gaps the iteration produces
(decoders that were also served at the previous decode step). Everything
else (start times, requests in the batch, backlog, requests in the system, per-request times)
is derived from these columns afterwards, vectorised (:mod:`.finalize`).

The batch rules are the spec's table, in the policies' own terms (``fill_decodes``,
``fill_chunks``, ``fill_whole_prefills`` in :mod:`llmqueue.policies.base`): decode tokens go to
the FCFS prefix of the decoders, ``min(nD, budget, slots)`` of them; chunked prefill takes the
prefill stream's next tokens, at most ``slots`` requests; whole prefill takes whole prompts
from the head while they fit.
"""

from __future__ import annotations

from array import array
from heapq import heappush

import numpy as np

from ..engine import stalled
from .compose import batch_plan
from .decoders import CALM_STEPS, adjust, head_request
from .feed import BIG, INF, RequestFeed
from .state import FT, ORCA, SARATHI, VLLM, CoreState, PolicySpec

#: Runs of identical iterations up to this length are written by the loop itself, longer ones
#: timed with numpy.
_SHORT_RUN = 48


class EpochBuffer:
    """Per-iteration columns of the current epoch (cleared by the driver after each epoch).

    Only what cannot be derived afterwards: end time, prefill tokens ``x``, decode tokens ``s``
    and regular gaps ``ic``. An iteration starts where the previous one ended, except after an
    idle period: ``idle`` lists (row, start) for those, and ``first_start`` is where the epoch's
    first iteration would start without one. The backlog and requests in the system at each
    boundary follow from arrivals and completions (:mod:`.finalize`).
    """

    NAMES = ("end", "x", "s", "ic")
    x: array[int]
    s: array[int]
    ic: array[int]

    def __init__(self) -> None:
        self.end = array("d")
        for n in self.NAMES[1:]:
            setattr(self, n, array("q"))
        self.idle: list[tuple[int, float]] = []
        self.first_start = 0.0

    def __len__(self) -> int:
        return len(self.end)

    def clear(self) -> None:
        for n in self.NAMES:
            del getattr(self, n)[:]
        self.idle.clear()


def _run_times(t0: float, dt: float, kl: int, ta: float, horizon: float) -> np.ndarray:
    """End times of up to ``kl`` identical iterations after one ending at ``t0`` (sequential
    additions, as the generic engine's clock): stop after the first that ends at or after the
    next arrival ``ta``, and before any that ends after ``horizon``."""
    a = np.full(kl + 1, dt)
    a[0] = t0
    c = np.cumsum(a)[1:]
    k = min(kl, int(np.searchsorted(c, horizon, "right")), int(np.searchsorted(c, ta, "left")) + 1)
    return c[:k]


def stall_error(S: CoreState, F: RequestFeed, policy_text: str, now: float, G: int, C: int,
                h: int, qa: int) -> Exception:
    """The generic engine's error for a policy that forms no batch (same type and message)."""
    if F.poison is not None and S.ai > F.poison:
        return ValueError(F.poison_msg)
    rid, left = head_request(S, F, G, C, h, qa)
    nsys = (qa - h) + S.nA + S.nW                # prefilling plus decoding requests
    return stalled("engine", policy_text, now, nsys, rid, left)


def run_epoch(S: CoreState, F: RequestFeed, P: PolicySpec, out: EpochBuffer, max_iters: int,
              policy_text: str, plans: list | None = None) -> None:
    """Advance until ``max_iters`` iterations are written, more input is needed, or the run is
    over (``S.finished``). Everything the loop changes is written back to ``S``.

    Inside the loop, admission and stream positions are relative to the feed's windows
    (``ar = ai - abase``, ``hr = h - qbase``, ``qr = qa - qbase``), and the prefix sums it
    keeps comparing against are cached: ``cqa`` (prompt tokens admitted so far) and ``nxt``
    (where the head request's prompt ends)."""
    kind, B, K, capD, T, horizon = P.kind, P.B, P.K, P.capD, P.T, P.horizon
    arr, ab, pcum = F.arr, F.abase, F.pcum
    cums, padm, pdec, qb = F.cums, F.padm, F.pdec, F.qbase
    dec, fin, zidx = F.dec, F.fin, F.zidx
    nzr = len(zidx)
    stop_r = BIG if F.exhausted else F.loaded - ab
    now, G, C = S.now, S.G, S.C
    ar, hr, qr, zr = S.ai - ab, S.h - qb, S.qa - qb, S.zq - F.zbase
    nA, nW, fresh = S.nA, S.nW, S.fresh
    ecnt, decend, W, wleft, trunc = S.ecnt, S.decend, S.W, S.wleft, S.trunc
    o_en, o_x, o_s, o_ic = out.end.append, out.x.append, out.s.append, out.ic.append
    de_append = decend.append
    out.first_start = now
    iters = 0
    ta = arr[ar]
    cqa = cums[qr]
    nxt = cums[hr + 1]
    zn = zidx[zr] - ab if zr < nzr else BIG           # next prompt-0 request (relative)
    if ar >= stop_r:
        max_iters = 0
    while True:
        # ---- admissions: every request that arrived by this boundary -------------------------
        if ta <= now and iters < max_iters:
            ar += 1
            ta = arr[ar]
            while ta <= now:                            # (the +inf sentinel ends this)
                ar += 1
                ta = arr[ar]
            qr = pcum[ar] - qb
            cqa = cums[qr]
            if ar >= stop_r:
                max_iters = iters                       # read more input before deciding
        # ---- requests that start decoding (request i, d decode tokens): first the prompts the
        # last batch finished, then the admitted requests with prompt 0 (decoding from admission)
        while nxt <= C or zn < ar:
            if nxt <= C:                                # a prefill ended
                d = pdec[hr]
                i = padm[hr]
                hr += 1
                nxt = cums[hr + 1]
                if not d:
                    continue                            # no decode tokens: done with its prefill
            else:                                       # prompt 0: decoding from admission
                i = zn + ab
                zr += 1
                zn = zidx[zr] - ab if zr < nzr else BIG
                d = dec[i - ab]
            if trunc:
                heappush(W, i)
                wleft[i] = d
                nW += 1
            else:
                f = G + d
                fin[i - ab] = f
                ecnt[f] = ecnt.get(f, 0) + 1
                nA += 1
                fresh += 1
        if iters >= max_iters:
            break
        nD = nA + nW
        if nD == 0 and qr == hr:                        # idle until the next arrival
            if ta > horizon or ta == INF:
                S.finished = True
                break
            now = ta
            out.idle.append((iters, ta))
            continue
        # ---- the batch ---------------------------------------------------------------------
        x = 0
        if kind == SARATHI:
            s = nD if nD < capD else capD
            if qr > hr and s < B and s < K:
                room = B - s
                sl = K - s
                avail = (cums[hr + sl] if qr - hr > sl else cqa) - C
                x = room if avail > room else avail
        elif kind == ORCA:
            s = B
            if qr > hr:
                avail = (cums[hr + K] if qr - hr > K else cqa) - C
                x = B if avail > B else avail
                s = B - x
                if K < B:                               # k_max may bind: count the chunks
                    Cn = C + x
                    q = hr
                    while cums[q + 1] <= Cn:
                        q += 1
                    c = q - hr + (1 if Cn > cums[q] else 0)
                    if K - c < s:
                        s = K - c
            elif K < s:
                s = K
            if nD < s:
                s = nD
        elif kind == VLLM and qr > hr or kind == FT and nD == 0:
            s = 0
            rem = B
            q = hr
            lim = qr if qr - hr < K else hr + K
            while q < lim:
                p = cums[q + 1] - cums[q]
                if p > rem:
                    break
                rem -= p
                q += 1
            x = B - rem
        else:                                           # decode-only batch (vLLM, FasterTransformer)
            s = nD if nD < capD else capD
        if x:
            Cn = C + x
            pdone = nxt <= Cn                           # a prefill ends in this iteration
        elif s == 0:
            S.ai, S.zq, S.nA, S.nW = ar + ab, zr + F.zbase, nA, nW
            raise stall_error(S, F, policy_text, now, G, C, hr + qb, qr + qb)
        if s and (nW or s < nA):                        # only the first s decoders fit
            S.ai = ar + ab
            nA, nW, fresh = adjust(S, F, s, G, nA, nW, fresh)
            trunc = True
        tok = s + x
        end = now + T[tok]
        if end > horizon:
            S.finished = True
            break
        # ---- write it, and the identical iterations that follow (no event before their end) ---
        o_en(end)
        o_x(x)
        o_s(s)
        if s:
            o_ic(s - fresh)
            de_append(end)
        else:
            o_ic(0)
        k = 1
        if not (x and pdone) and ta > end and (s == 0 or G + 1 not in ecnt):
            kl = max_iters - iters
            if x:
                kp = (nxt - C - 1) // x                 # chunks of the head prompt that leave it unfinished
                if kp < kl:
                    kl = kp
            if kl > 1:
                dt = T[tok]
                span = (ta if ta < horizon else horizon) - now
                if span < INF:
                    est = int(span / dt) + 2
                    if est < kl:
                        kl = est
                if s:                                   # up to the next step at which decoders leave
                    g = G + 2
                    gl = G + kl
                    while g <= gl and g not in ecnt:
                        g += 1
                    if g - G < kl:
                        kl = g - G
                if kl <= _SHORT_RUN:
                    t = end
                    while k < kl:
                        t = t + dt
                        if t > horizon:
                            break
                        o_en(t)
                        o_x(x)
                        o_s(s)
                        o_ic(s)
                        if s:
                            de_append(t)
                        k += 1
                        end = t
                        if t >= ta:
                            break
                else:
                    ts = _run_times(end, dt, kl - 1, ta, horizon)
                    m = ts.size
                    if m:
                        b = ts.tobytes()
                        out.end.frombytes(b)
                        out.x.extend([x] * m)
                        out.s.extend([s] * m)
                        out.ic.extend([s] * m)
                        if s:
                            decend.frombytes(b)
                        k += m
                        end = float(ts[-1])
        if plans is not None:
            S.ai = ar + ab
            plan = batch_plan(S, F, G, C, hr + qb, x, s)
            plans.extend([plan] * k)
        iters += k
        now = end
        # ---- apply: decode step(s), then prefills that ended -----------------------------------
        if s:
            G += k
            fresh = 0
            n = ecnt.pop(G, 0)
            if n:
                nA -= n
            if trunc:
                if nW:
                    S.calm = 0
                else:
                    S.calm += k
                    if S.calm >= CALM_STEPS:
                        trunc = S.trunc = False
                        S.a_order = []
        if x:
            if k > 1:
                C += k * x
            else:
                C = Cn                                  # the prefills that ended start decoding above
    S.now, S.G, S.C = now, G, C
    S.ai, S.h, S.qa, S.zq = ar + ab, hr + qb, qr + qb, zr + F.zbase
    S.nA, S.nW, S.fresh, S.trunc = nA, nW, fresh, trunc
    S.iterations += iters
