"""The request stream as columns: numpy arrays instead of one Python object per request.

A long generated workload is a few numpy arrays (arrival times, prompt and decode lengths), so
building it costs what drawing the random numbers costs. :class:`RequestArrays` is one block of
requests as columns; :class:`RequestStream` is what :meth:`Workload.requests` returns: an
iterator of :class:`~llmqueue.engine.request.Request` objects (for the generic engine and every
other consumer that wants objects) that can instead hand its blocks over whole
(:meth:`RequestStream.array_batches`), which is what the fast core's feed reads. Both views come
from the same blocks, so they are the same requests, value for value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.request import Request


@dataclass(frozen=True, eq=False)
class RequestArrays:
    """Requests as columns (all of one length). ``job_class`` is one string for every request or
    an object array; ``label``, ``prefix_id`` (object arrays, None entries allowed),
    ``prefix_tokens`` and ``block_hashes`` (an object array of tuples of ints, None entries
    allowed) are None when no request has one; ``hash_block_tokens`` is the tokens per hash
    block of every request that has hashes."""

    request_id: np.ndarray
    arrival_time: np.ndarray
    prompt_tokens: np.ndarray
    decode_tokens: np.ndarray
    job_class: str | np.ndarray = "default"
    label: np.ndarray | None = None
    prefix_id: np.ndarray | None = None
    prefix_tokens: np.ndarray | None = None
    block_hashes: np.ndarray | None = None
    hash_block_tokens: int = 0

    def __len__(self) -> int:
        return int(self.request_id.size)

    def _optional(self) -> tuple[str, ...]:
        return tuple(n for n in ("label", "prefix_id", "prefix_tokens", "block_hashes") if getattr(self, n) is not None)

    def slice(self, a: int, b: int) -> RequestArrays:
        """Requests ``a..b-1`` of this block."""
        cut = {n: getattr(self, n)[a:b] for n in ("request_id", "arrival_time", "prompt_tokens",
                                                  "decode_tokens", *self._optional())}
        jc = self.job_class if isinstance(self.job_class, str) else self.job_class[a:b]
        return RequestArrays(job_class=jc, hash_block_tokens=self.hash_block_tokens, **cut)

    def with_ids(self, first: int) -> RequestArrays:
        """The same requests numbered ``first, first + 1, ...``."""
        rid = np.arange(first, first + len(self), dtype=np.int64)
        return RequestArrays(rid, self.arrival_time, self.prompt_tokens, self.decode_tokens,
                             self.job_class, self.label, self.prefix_id, self.prefix_tokens,
                             self.block_hashes, self.hash_block_tokens)

    @staticmethod
    def concat(parts: Sequence[RequestArrays]) -> RequestArrays:
        """One block holding ``parts`` in order."""
        if len(parts) == 1:
            return parts[0]
        n = sum(len(p) for p in parts)
        cols: dict[str, Any] = {c: np.concatenate([getattr(p, c) for p in parts])
                for c in ("request_id", "arrival_time", "prompt_tokens", "decode_tokens")}
        jcs = {p.job_class for p in parts if isinstance(p.job_class, str)}
        if all(isinstance(p.job_class, str) for p in parts) and len(jcs) == 1:
            cols["job_class"] = jcs.pop()
        else:
            cols["job_class"] = np.concatenate([np.full(len(p), p.job_class, dtype=object)
                                                if isinstance(p.job_class, str) else p.job_class
                                                for p in parts])
        for c, fill in (("label", None), ("prefix_id", None), ("prefix_tokens", 0)):
            if any(getattr(p, c) is not None for p in parts):
                dt = np.int64 if c == "prefix_tokens" else object
                cols[c] = np.concatenate([getattr(p, c) if getattr(p, c) is not None
                                          else np.full(len(p), fill, dtype=dt) for p in parts])
        if any(p.block_hashes is not None for p in parts):
            sizes = {p.hash_block_tokens for p in parts if p.block_hashes is not None}
            if len(sizes) > 1:
                raise ValueError(f"requests with different hash block sizes {sorted(sizes)} in one stream")
            cols["block_hashes"] = np.concatenate([p.block_hashes if p.block_hashes is not None
                                                   else np.full(len(p), None, dtype=object) for p in parts])
            cols["hash_block_tokens"] = sizes.pop()
        assert cols["request_id"].size == n
        return RequestArrays(**cols)

    @classmethod
    def from_requests(cls, requests: Sequence[Request]) -> RequestArrays:
        """Columns of ``requests`` (floats for the arrival times)."""
        n = len(requests)
        col = lambda a, dt: np.fromiter((getattr(r, a) for r in requests), dtype=dt, count=n)  # noqa: E731
        obj = lambda a: np.array([getattr(r, a) for r in requests] + [None], dtype=object)[:n]  # noqa: E731
        classes = obj("job_class")
        jc: str | np.ndarray = classes
        if n == 0 or all(c == classes[0] for c in classes):
            jc = classes[0] if n else "default"
        label = obj("label")
        pid = obj("prefix_id")
        hashes = obj("block_hashes")
        sizes = {r.hash_block_tokens for r in requests if r.block_hashes is not None}
        if len(sizes) > 1:
            raise ValueError(f"requests with different hash block sizes {sorted(sizes)} in one stream")
        return cls(col("request_id", np.int64), col("arrival_time", np.float64),
                   col("prompt_tokens", np.int64), col("decode_tokens", np.int64), jc,
                   label if any(x is not None for x in label) else None,
                   pid if any(x is not None for x in pid) else None,
                   col("prefix_tokens", np.int64) if any(x is not None for x in pid) else None,
                   hashes if sizes else None, sizes.pop() if sizes else 0)

    def to_requests(self) -> list[Request]:
        """One :class:`Request` per row (Python floats and ints, as the per-request stream had)."""
        n = len(self)
        cols = [self.request_id.tolist(), self.arrival_time.tolist(), self.prompt_tokens.tolist(),
                self.decode_tokens.tolist()]
        jc = [self.job_class] * n if isinstance(self.job_class, str) else self.job_class.tolist()
        opt = [getattr(self, c).tolist() if getattr(self, c) is not None else [d] * n
               for c, d in (("label", None), ("prefix_id", None), ("prefix_tokens", 0))]
        if self.block_hashes is None:
            return [Request(*row) for row in zip(*cols, jc, *opt)]
        size = self.hash_block_tokens
        return [Request(rid, t, p, d, c, lab, pid, pt, None if h is None else tuple(h), size if h is not None else 0)
                for rid, t, p, d, c, lab, pid, pt, h in zip(*cols, jc, *opt, self.block_hashes.tolist())]


def rechunk(blocks: Iterator[RequestArrays], size: int) -> Iterator[RequestArrays]:
    """The same requests in blocks of exactly ``size`` (the last one shorter)."""
    held: list[RequestArrays] = []
    have = 0
    for b in blocks:
        if not len(b):
            continue
        held.append(b)
        have += len(b)
        while have >= size:
            block = RequestArrays.concat(held)
            yield block.slice(0, size)
            rest = block.slice(size, len(block))
            held, have = ([rest], len(rest)) if len(rest) else ([], 0)
    if have:
        yield RequestArrays.concat(held)


class RequestStream:
    """The requests of one run, read either as :class:`Request` objects (iterate) or as blocks
    of columns (:meth:`array_batches`, only before any object has been read)."""

    def __init__(self, blocks: Iterator[RequestArrays]) -> None:
        self._blocks = blocks
        self._objects: Iterator[Request] | None = None

    def __iter__(self) -> RequestStream:
        return self

    def __next__(self) -> Request:
        if self._objects is None:
            self._objects = (r for b in self._blocks for r in b.to_requests())
        return next(self._objects)

    def array_batches(self, size: int) -> Iterator[RequestArrays] | None:
        """The remaining requests as blocks of ``size`` (None once objects have been read)."""
        if self._objects is not None:
            return None
        self._objects = iter(())
        return rechunk(self._blocks, size)

    def arrays(self) -> RequestArrays:
        """Every remaining request in one block."""
        blocks = self.array_batches(1 << 16)
        if blocks is None:
            raise ValueError("array view of a request stream that has already been read as objects")
        parts = list(blocks)
        return RequestArrays.concat(parts) if parts else RequestArrays(
            np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.int64))
