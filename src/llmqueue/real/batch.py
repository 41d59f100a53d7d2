"""One iteration's tokens, flattened: what the forward pass needs to run a mixed batch at once.

Decode tokens come first (one per request, shortest context first), then each prefill chunk's
tokens. Every token has an id, an absolute position and the KV slot it writes. Attention is per
request over its own cache, read block by block through the request's block table. The decode
tokens attend in a few padded groups of similar context length (``decode_groups``): one padded
batch would make every decode pay for the longest context, and one group per length would pay
per-call overhead; :func:`group_by_length` picks at most ``MAX_DECODE_GROUPS`` groups, trading
padding against a fixed cost per group. Each prefill chunk attends over its request's cached context plus itself with a
causal mask (``chunks``). Masks also hide the unused tail of each request's last block. Building
a batch reserves its tokens' cache slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .kv_cache import PagedKVCache

#: Most padded groups the decode tokens are split into (per layer, one attention call each).
MAX_DECODE_GROUPS = 4
#: What one more group costs (a few small kernel calls per layer), in padded context tokens: on
#: the CPU about as much as attending over 256 more tokens. A small batch of decodes stays in one
#: group; a large one with spread-out lengths is split.
GROUP_COST_TOKENS = 256


@dataclass
class DecodeGroup:
    """Decode rows ``start .. start+count`` of the flat batch, padded to the same block count."""

    start: int
    count: int
    blocks: torch.Tensor         # [count, nb] block tables (padded with block 0)
    mask: torch.Tensor           # [count, 1, 1, nb * block_size]


@dataclass
class Chunk:
    """A prefill chunk: rows ``start .. start+length`` of the flat batch, all of one request."""

    start: int
    length: int
    blocks: torch.Tensor         # [nb] the request's blocks, this chunk's included
    mask: torch.Tensor           # [group * length, nb * block_size] True where a query may attend


@dataclass
class FlatBatch:
    input_ids: torch.Tensor      # [T]
    positions: torch.Tensor      # [T]
    write_slots: torch.Tensor    # [T]
    decode_ids: list[int]        # request of each decode row, in row order
    decode_groups: list[DecodeGroup] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    sample_index: torch.Tensor | None = None   # rows of the flat batch whose logits are wanted
    context_tokens: int = 0      # total KV context after the step (the batch-time models' "context")

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_decode(self) -> int:
        return len(self.decode_ids)


def group_by_length(nblocks: list[int], max_groups: int = MAX_DECODE_GROUPS,
                    group_cost: float = 0.0) -> list[int]:
    """Split a sorted list of block counts into at most ``max_groups`` contiguous groups that
    minimise the padded total (sum over groups of size x largest) plus ``group_cost`` per group
    (in blocks); returns the group sizes."""
    vals = sorted(set(nblocks))
    counts = [nblocks.count(v) for v in vals]
    m = len(vals)
    inf = float("inf")
    top = min(max_groups, m)
    # best[g][j]: least padded total covering the first j distinct values with g groups
    best = [[inf] * (m + 1) for _ in range(top + 1)]
    cut = [[0] * (m + 1) for _ in range(top + 1)]
    best[0][0] = 0
    for g in range(1, top + 1):
        for j in range(1, m + 1):
            size = 0
            for i in range(j, 0, -1):           # group holds distinct values i-1 .. j-1
                size += counts[i - 1]
                c = best[g - 1][i - 1] + size * vals[j - 1]
                if c < best[g][j]:
                    best[g][j], cut[g][j] = c, i - 1
    g = min(range(1, top + 1), key=lambda k: (best[k][m] + group_cost * k, k))
    sizes, j = [], m
    while j > 0:
        i = cut[g][j]
        sizes.append(sum(counts[i:j]))
        j, g = i, g - 1
    return sizes[::-1]


def build_batch(cache: PagedKVCache, decodes: Sequence[tuple[int, int]],
                chunks: Sequence[tuple[int, Sequence[int], bool]], group: int,
                device: torch.device, sample_all: bool = False) -> FlatBatch:
    """Flatten ``decodes`` ``(request_id, token)`` and ``chunks`` ``(request_id, tokens, sample_last)``.

    Sampled rows: every decode token, the last token of each chunk with ``sample_last``, or every
    row when ``sample_all``.
    """
    bs = cache.block_size
    ids: list[int] = []
    pos: list[np.ndarray] = []
    write: list[np.ndarray] = []
    sample: list[int] = []
    # decodes, shortest context first, so that groups of similar length are contiguous rows
    order = sorted(range(len(decodes)), key=lambda i: cache.length(decodes[i][0]))
    decode_ids: list[int] = []
    lengths: list[int] = []
    for i in order:
        rid, tok = decodes[i]
        p = cache.length(rid)
        write.append(cache.append(rid, 1))
        pos.append(np.array([p], dtype=np.int64))
        ids.append(tok)
        decode_ids.append(rid)
        lengths.append(p + 1)
        sample.append(len(sample))
    context = sum(lengths)
    groups: list[DecodeGroup] = []
    nbs = [-(-n // bs) for n in lengths]
    start = 0
    for size in group_by_length(nbs, group_cost=GROUP_COST_TOKENS / bs) if decodes else []:
        rows = range(start, start + size)
        nb = nbs[start + size - 1]
        tab = np.zeros((size, nb), dtype=np.int64)
        for k, r in enumerate(rows):
            t = cache.block_table(decode_ids[r])
            tab[k, :len(t)] = t
        mask = np.arange(nb * bs)[None, :] < np.asarray(lengths[start:start + size])[:, None]
        groups.append(DecodeGroup(start, size, torch.from_numpy(tab).to(device),
                                  torch.from_numpy(mask).to(device).view(size, 1, 1, nb * bs)))
        start += size
    out_chunks: list[Chunk] = []
    start = len(decodes)
    for rid, toks, sample_last in chunks:
        n = len(toks)
        if n == 0:
            raise ValueError(f"empty prefill chunk for request {rid}")
        p0 = cache.length(rid)
        write.append(cache.append(rid, n))
        pos.append(np.arange(p0, p0 + n, dtype=np.int64))
        ids.extend(toks)
        context += p0 + n
        table = cache.block_table(rid)
        allowed = np.arange(len(table) * bs)[None, :] <= np.arange(p0, p0 + n)[:, None]
        chunk_mask = torch.from_numpy(np.tile(allowed, (group, 1))).to(device)
        out_chunks.append(Chunk(start, n, torch.tensor(table, dtype=torch.long, device=device), chunk_mask))
        if sample_last:
            sample.append(start + n - 1)
        start += n
    T = len(ids)
    return FlatBatch(
        input_ids=torch.tensor(ids, dtype=torch.long, device=device),
        positions=torch.from_numpy(np.concatenate(pos) if pos else np.zeros(0, np.int64)).to(device),
        write_slots=torch.from_numpy(np.concatenate(write) if write else np.zeros(0, np.int64)).to(device),
        decode_ids=decode_ids, decode_groups=groups, chunks=out_chunks,
        sample_index=(torch.arange(T, device=device) if sample_all
                      else torch.tensor(sample, dtype=torch.long, device=device)),
        context_tokens=context)
