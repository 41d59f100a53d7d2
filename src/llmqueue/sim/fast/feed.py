"""The fast core's view of the request stream: compact columns indexed by admission order.

The generic engine admits requests one at a time from an iterator; the fast core needs random
access to the requests it has admitted (to enrol a request as a decoder when its prefill ends)
and to the next arrival times (to know how many identical iterations fit before one). So
:class:`RequestFeed` reads the iterator lazily, ``chunk`` requests at a time, into
``array.array`` columns (8 bytes per request and column, no Python object per request), and
drops the prefix that no live request needs any more (:meth:`trim`), so memory follows the
requests in the system, not the length of the run.

Two index spaces, both global and increasing for the whole run:

* the *admission index* ``i`` (0, 1, 2, ... in input order, which is the engine's FCFS order);
  column ``c`` holds request ``i`` at ``c[i - abase]``;
* the *prefill stream* index ``q``: the requests with ``prompt_tokens > 0``, in admission order.
  Chunked FCFS prefill consumes this stream token by token, so ``cums[q - qbase]`` (prompt
  tokens of the stream before ``q``) tells which requests a number of processed prefill tokens
  has finished. Requests with prompt 0 skip it (``zidx`` lists them); they start decoding at
  admission.

Every column ends with a sentinel (an arrival at +inf, a prompt prefix sum at 2**62) so that the
core's loops need no bounds checks.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import islice
from operator import attrgetter

import numpy as np

from ...engine.request import Request

INF = float("inf")
BIG = 1 << 62

_ATTRS = [attrgetter(a) for a in ("request_id", "arrival_time", "prompt_tokens", "decode_tokens", "label")]


class RequestFeed:
    """Requests read so far, as columns; see the module docstring for the index spaces."""

    def __init__(self, requests: Iterable[Request], chunk: int = 1 << 16) -> None:
        self.chunk = int(chunk)
        # A workload's RequestStream hands over numpy blocks: no Request object is built.
        view = getattr(requests, "array_batches", None)
        self._blocks = view(self.chunk) if view is not None else None
        self._it = iter(requests) if self._blocks is None else None
        #: whether request ids have increased strictly in input order so far (records can then
        #: be written in request-id order as they become final; see ``watermark``)
        self.ids_increasing = True
        self._last_rid: int | None = None
        self.exhausted = False
        self.loaded = 0            # admission indices [0, loaded) have been read
        self.abase = 0
        self.arr = array("d", [INF])      # arrival times (+ sentinel)
        self.rid = array("q")
        self.prompt = array("q")
        self.dec = array("q")
        self.fin = array("q")             # decode step at which the request's last token is due; -1 if none
        self.pend = array("d")            # prefill end time (NaN until known)
        self.done = bytearray()           # 1 once the request's record has been produced
        self.cumtot = array("q", [0])     # tokens of requests before i (absolute prefix sums)
        self.pcum = array("q", [0])       # prefill-stream requests before i
        self.qbase = 0
        self.cums = array("q", [0, BIG])  # prompt tokens of the prefill stream before q (+ sentinel)
        self.padm = array("q")            # admission index of stream request q
        self.pdec = array("q")            # decode tokens of stream request q
        self.zidx: list[int] = []         # admission indices of prompt-0 requests, in order
        self.zbase = 0
        self.labels: list[tuple[int, int, str]] = []   # (admission index, request id, label)
        self.dmax = 0                     # largest decode_tokens read so far
        self.last_time = 0.0
        self.last_raw = 0.0
        #: admission index after which the input is out of order (the generic engine raises
        #: when it reads the out-of-order request, i.e. once this request has arrived)
        self.poison: int | None = None
        self.poison_msg = ""

    # -- reading ------------------------------------------------------------------------------
    def refill(self) -> None:
        """Read the next chunk of requests (or mark the stream exhausted)."""
        if self.exhausted:
            return
        if self._blocks is not None:
            block = next(self._blocks, None)
            if block is None or len(block) < self.chunk:
                self.exhausted = True
            if block is None or not len(block):
                return
            rid, t, p, d = (block.request_id, block.arrival_time, block.prompt_tokens, block.decode_tokens)
            n = rid.size
            lab = block.label.tolist() if block.label is not None else [None] * n
            reqs = None
        else:
            assert self._it is not None
            reqs = list(islice(self._it, self.chunk))
            if len(reqs) < self.chunk:
                self.exhausted = True
            if not reqs:
                return
            n = len(reqs)
            rid, t, p, d = (np.fromiter(map(g, reqs), dtype=dt, count=n)
                            for g, dt in zip(_ATTRS, (np.int64, np.float64, np.int64, np.int64)))
            lab = list(map(_ATTRS[4], reqs))
        if self.ids_increasing and n:
            self.ids_increasing = bool((self._last_rid is None or rid[0] > self._last_rid)
                                       and np.all(rid[1:] > rid[:-1]))
            self._last_rid = int(rid[-1])
        prev = np.concatenate(([self.last_time], t[:-1]))
        bad = np.flatnonzero(t < prev)
        if bad.size:
            # Keep the requests before the first out-of-order one; remember where the generic
            # engine would raise.
            b = int(bad[0])
            times = [r.arrival_time for r in reqs] if reqs is not None else t.tolist()
            self.poison = self.loaded + b - 1
            last = times[b - 1] if b else self.last_raw
            self.poison_msg = (f"requests must be sorted by arrival time: request {int(rid[b])} "
                               f"arrives at {times[b]} after one at {last}")
            self.exhausted = True
            rid, t, p, d, lab = rid[:b], t[:b], p[:b], d[:b], lab[:b]
            if b == 0:
                return
        n = rid.size
        base = self.loaded
        self.last_time = float(t[-1])
        self.last_raw = reqs[rid.size - 1].arrival_time if reqs is not None else float(t[rid.size - 1])
        self.arr.pop()
        self.arr.frombytes(t.tobytes())
        self.arr.append(INF)
        self.rid.frombytes(rid.tobytes())
        self.prompt.frombytes(p.tobytes())
        self.dec.frombytes(d.tobytes())
        self.fin.frombytes(np.full(n, -1, dtype=np.int64).tobytes())
        self.pend.frombytes(np.full(n, np.nan).tobytes())
        self.done.extend(bytes(n))
        self.cumtot.frombytes((self.cumtot[-1] + np.cumsum(p + d)).tobytes())
        has_p = p > 0
        self.pcum.frombytes((self.pcum[-1] + np.cumsum(has_p)).tobytes())
        sp = p[has_p]
        self.cums.pop()
        self.cums.frombytes((self.cums[-1] + np.cumsum(sp)).tobytes())
        self.cums.append(BIG)
        self.padm.frombytes((base + np.flatnonzero(has_p)).astype(np.int64).tobytes())
        self.pdec.frombytes(d[has_p].tobytes())
        self.zidx.extend((base + np.flatnonzero(~has_p)).tolist())
        if lab.count(None) != n:
            self.labels.extend((base + k, int(rid[k]), lb) for k, lb in enumerate(lab) if lb is not None)
        self.dmax = max(self.dmax, int(d.max()))
        self.loaded += n

    # -- memory -------------------------------------------------------------------------------
    def trim(self, lo: int, h: int, zq: int) -> None:
        """Forget admission indices below ``lo``, stream indices below ``h`` and the prompt-0
        list before position ``zq``: nothing live refers to them any more."""
        k = lo - self.abase
        if k > 0:
            for col in (self.arr, self.rid, self.prompt, self.dec, self.fin, self.pend,
                        self.cumtot, self.pcum):
                del col[:k]
            del self.done[:k]
            self.abase = lo
        k = h - self.qbase
        if k > 0:
            for col in (self.cums, self.padm, self.pdec):
                del col[:k]
            self.qbase = h
        k = zq - self.zbase
        if k > 0:
            del self.zidx[:k]
            self.zbase = zq

    def watermark(self, lo: int) -> float:
        """Every record not yet produced has a request id >= this, given that admission index
        ``lo`` is the first one whose record is not final (-inf if ids do not increase)."""
        if not self.ids_increasing:
            return -INF
        if lo < self.loaded:
            return float(self.rid[lo - self.abase])
        return INF if self.exhausted or self._last_rid is None else float(self._last_rid + 1)

    def label_dict(self, read_upto: int) -> dict[int, str]:
        """Labels of the requests the generic engine would have read: those admitted plus the
        next one (its feeder reads one request ahead)."""
        return {r: lb for i, r, lb in self.labels if i <= read_upto}
