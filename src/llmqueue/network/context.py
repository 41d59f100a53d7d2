"""Shared context: a job's visits as one growing token stream (``JobClass.share_context``).

A job of a class with shared context keeps a stream of tokens: every visit's prompt is the
stream as it is when the visit starts, followed by the visit's own new prompt tokens (the
step's ``prompt_tokens`` draw); when the visit completes, its new tokens and then its output
(``decode_tokens``) are appended to the stream. In a chain, visit k's prompt is therefore
visits 1..k-1's new tokens and outputs plus its own new tokens, and visit k-1's whole prompt
is a prefix of it. Parallel visits start from the same stream and are appended in the order
they complete.

Block hashes (:attr:`Request.block_hashes`, ``hash_block_tokens`` tokens a block): the stream
is made of segments (a visit's new tokens, a visit's output), each with an id unique in the
job; block ``j`` is hashed from its parent block's hash (the job's random key for block 0) and
the pieces of segments it holds, so equal hashes mean equal whole prefixes, a visit's full
prompt blocks recur in every later prompt built on them, and a partial last block gets a new
hash once its content grows (as vLLM's chained block hashes do).
"""

from __future__ import annotations

import hashlib
import struct

_PIECE = struct.Struct("<qqq")


def _hash(parent: int, pieces: list[tuple[int, int, int]]) -> int:
    h = hashlib.blake2b(parent.to_bytes(8, "little"), digest_size=8)
    for p in pieces:
        h.update(_PIECE.pack(*p))
    return int.from_bytes(h.digest(), "little") >> 1


class JobContext:
    """One job's stream: its segments, and the hashes of the stream's full blocks."""

    __slots__ = ("key", "block", "segments", "tokens", "hashes", "_next")

    def __init__(self, key: int, block: int) -> None:
        self.key, self.block = key, block
        self.segments: list[tuple[int, int, int]] = []     # (segment id, start in stream, length)
        self.tokens = 0
        self.hashes: list[int] = []                        # hashes of the stream's full blocks
        self._next = 0

    def new_segment(self) -> int:
        self._next += 1
        return self._next - 1

    def _chain(self, segments: list[tuple[int, int, int]], first: int, end: int) -> list[int]:
        """Hashes of blocks ``first ..`` of the tokens ``0 .. end`` laid out by ``segments``
        (the last block may be partial), chained from block ``first - 1``'s hash."""
        b = self.block
        out: list[int] = []
        parent = self.hashes[first - 1] if first else self.key
        i = 0
        for j in range(first, -(-end // b)):
            lo, hi = j * b, min((j + 1) * b, end)
            pieces = []
            while segments[i][1] + segments[i][2] <= lo:
                i += 1
            k = i
            while k < len(segments) and segments[k][1] < hi:
                sid, start, n = segments[k]
                pieces.append((sid, max(lo, start) - start, min(hi, start + n) - start))
                k += 1
            parent = _hash(parent, pieces)
            out.append(parent)
        return out

    def prompt(self, new: int, sid: int) -> tuple[int, tuple[int, ...] | None]:
        """(prompt tokens, block hashes) of a visit starting now with ``new`` new tokens
        (segment ``sid``)."""
        total = self.tokens + new
        if total == 0:
            return 0, None
        full = len(self.hashes)
        segs = [s for s in self.segments if s[1] + s[2] > full * self.block]
        if new:
            segs.append((sid, self.tokens, new))
        return total, tuple(self.hashes) + tuple(self._chain(segs, full, total))

    def append(self, sid: int, n: int) -> None:
        """Add segment ``sid`` of ``n`` tokens at the end of the stream."""
        if n <= 0:
            return
        self.segments.append((sid, self.tokens, n))
        self.tokens += n
        full = self.tokens // self.block
        if full > len(self.hashes):
            segs = [s for s in self.segments if s[1] + s[2] > len(self.hashes) * self.block]
            self.hashes += self._chain(segs, len(self.hashes), full * self.block)
