"""What a trace holds, in numbers: ``llmqueue trace-stats`` (any supported format).

Requests, duration (last arrival minus first), arrival rate, prompt and output length
percentiles; for a trace with block hashes (Mooncake) also the block size, the number of
distinct blocks and the **block reuse ceiling**: the share of all prompt blocks whose hash
appeared in an earlier request (in file order), i.e. the hit rate, counted in the trace's
blocks, of an unbounded prefix cache that had every earlier request's prompt computed. A block
is counted on its hash alone, its position aside (equal ids mean equal prefixes, so an id recurs
only at its own position).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .arrays import RequestArrays
from .traces import read_trace_arrays

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class TraceStats:
    requests: int
    duration_s: float
    rate_per_s: float
    prompt_tokens: dict[str, float]
    output_tokens: dict[str, float]
    block_size: int | None = None
    prompt_blocks: int | None = None
    unique_blocks: int | None = None
    reused_blocks: int | None = None
    block_reuse_ceiling: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        def dist(d: dict[str, float]) -> str:
            return ", ".join(f"{k} {v:,.0f}" for k, v in d.items())

        out = [f"requests            {self.requests:,}",
               f"duration            {self.duration_s:,.1f} s",
               f"rate                {self.rate_per_s:,.3f} req/s",
               f"prompt tokens       {dist(self.prompt_tokens)}",
               f"output tokens       {dist(self.output_tokens)}"]
        if self.block_size is not None:
            out += [f"block size          {self.block_size} tokens",
                    f"prompt blocks       {self.prompt_blocks:,}",
                    f"unique blocks       {self.unique_blocks:,}",
                    f"block reuse ceiling {self.block_reuse_ceiling:.2%} "
                    f"({self.reused_blocks:,} prompt blocks seen in an earlier request)"]
        return out


def _dist(x: np.ndarray) -> dict[str, float]:
    if not x.size:
        return {"mean": 0.0, **{f"p{q}": 0.0 for q in PERCENTILES}, "max": 0.0}
    return {"mean": float(x.mean()), **{f"p{q}": float(np.percentile(x, q)) for q in PERCENTILES},
            "max": float(x.max())}


def reuse_counts(hashes: Any) -> tuple[int, int, int]:
    """(prompt blocks, distinct block ids, blocks whose id appeared in an earlier request)."""
    seen: set[int] = set()
    total = reused = 0
    for ids in hashes:
        if ids is None:
            continue
        total += len(ids)
        reused += sum(1 for h in ids if h in seen)
        seen.update(ids)
    return total, len(seen), reused


def stats_of(arrays: RequestArrays) -> TraceStats:
    """The statistics of a workload's requests (file order)."""
    t = arrays.arrival_time
    n = len(arrays)
    duration = float(t[-1] - t[0]) if n else 0.0
    extra: dict[str, Any] = {}
    if arrays.block_hashes is not None:
        total, unique, reused = reuse_counts(arrays.block_hashes)
        extra = dict(block_size=arrays.hash_block_tokens, prompt_blocks=total, unique_blocks=unique,
                     reused_blocks=reused, block_reuse_ceiling=reused / total if total else 0.0)
    return TraceStats(requests=n, duration_s=duration, rate_per_s=n / duration if duration > 0 else 0.0,
                      prompt_tokens=_dist(arrays.prompt_tokens), output_tokens=_dist(arrays.decode_tokens),
                      **extra)


def trace_stats(path: str | os.PathLike[str], fmt: str = "auto") -> TraceStats:
    """The statistics of the trace file ``path`` (format as :func:`~.traces.read_trace_arrays`)."""
    return stats_of(read_trace_arrays(path, fmt))
