"""How much memory a run will take, estimated before it starts.

Two parts, estimated from the workload's size (requests, mean tokens) and the engine's load:

* **records**: what an in-memory result holds at the end (the requests and iterations tables,
  one float per inter-token gap). A streamed run (:func:`~llmqueue.sim.stream.run_to_disk`)
  writes records to disk as they become final and keeps none of this, so a run whose records
  would not fit is streamed instead (:func:`plan_run`).
* **state**: what must be in memory while the run goes on, streamed or not: the requests in the
  system. A stable run holds few; an overloaded one (load rho > 1) accumulates about
  ``(1 - 1/rho)`` of all requests by the end. A run whose state cannot fit in the machine's free
  memory is refused with both numbers in the message, before it starts.

The per-item costs are measured upper bounds (CPython objects, pandas columns), not exact
sizes: the estimate is meant to tell 100 MB from 100 GB, not 100 MB from 120 MB.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..errors import LLMQueueError

#: Bytes per request of an in-memory result (the requests table and its intermediate columns).
RECORD_BYTES_PER_REQUEST = 400
#: Bytes per inter-token gap of an in-memory result (the expanded ITL array, and the sort copy).
RECORD_BYTES_PER_GAP = 24
#: Bytes per iteration of an in-memory result (the iterations table).
RECORD_BYTES_PER_ITERATION = 120
#: Bytes per request in the system while the run goes on (the generic engine's request state is
#: the larger of the two engines': a Python object with its logs).
STATE_BYTES_PER_REQUEST = 1500
#: The CLI streams a run whose records would take more than this (its summary needs none of them).
STREAM_RECORDS_ABOVE = 256 << 20


class RunTooLarge(LLMQueueError, MemoryError):
    """A run whose in-system state cannot fit in the machine's free memory (refused before it starts)."""


@dataclass(frozen=True)
class Footprint:
    """Estimated bytes of a run: its in-memory records and its in-system state."""

    requests: float          # expected number of requests
    records_bytes: float
    state_bytes: float

    def describe(self) -> str:
        return (f"{self.requests:.3g} requests: about {human(self.records_bytes)} of records in memory, "
                f"{human(self.state_bytes)} of in-system state")


def human(n: float) -> str:
    """Bytes in KB/MB/GB/TB (powers of 1024), 3 significant digits."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TB"


def free_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def workload_size(workload, horizon: float | None = None) -> tuple[float, float, float]:
    """(expected requests, mean prompt tokens, mean decode tokens) of a
    :class:`~llmqueue.workload.Workload` run until ``horizon`` (``inf`` requests: no bound is known)."""
    n0 = len(workload.initial)
    if workload.trace is not None:
        n = float(len(workload.trace))
        if workload.num_requests is not None:
            n = min(n, workload.num_requests)
    elif workload.arrival is not None:
        n = math.inf
        if workload.num_requests is not None:
            n = float(workload.num_requests)
        if workload.duration_s is not None:
            n = min(n, workload.arrival_rate * workload.duration_s)
        if horizon is not None:
            n = min(n, workload.arrival_rate * horizon)
    else:
        n = 0.0
    return n + n0, float(workload.mean_prompt_tokens), float(workload.mean_decode_tokens)


def estimate(workload, token_budget: int, rho: float | None = None, horizon: float | None = None) -> Footprint:
    """The :class:`Footprint` of running ``workload`` on an engine with ``token_budget`` tokens
    per iteration until ``horizon``; ``rho`` (the load, None if unknown) sizes the in-system state."""
    n, mp, md = workload_size(workload, horizon)
    tokens = n * (mp + md)
    iterations = min(1.5 * tokens / max(1, token_budget), tokens)   # batches are rarely full at the end
    records = n * RECORD_BYTES_PER_REQUEST + n * md * RECORD_BYTES_PER_GAP + iterations * RECORD_BYTES_PER_ITERATION
    backlog_share = 0.0 if rho is None or rho <= 1 else 1 - 1 / rho
    state = n * backlog_share * STATE_BYTES_PER_REQUEST
    return Footprint(n, records, state)


#: What to lower when a single-engine run is refused.
ENGINE_ADVICE = ("lower workload.num_requests or duration_s, or the load (an overloaded engine keeps a "
                 "growing share of all requests in the system)")
#: Why a single-engine run may not be streamed.
ENGINE_NO_STREAM = "it cannot be streamed: a KV memory model, batch compositions or a policy without the fast core"


def plan_run(fp: Footprint, *, can_stream: bool, stream_above: float | None = None,
             free: int | None = None, what: str = "the run", advice: str = ENGINE_ADVICE,
             no_stream: str = ENGINE_NO_STREAM) -> bool:
    """Whether to stream a run of footprint ``fp``, or refuse it (:class:`RunTooLarge`).

    Streamed when it can be and its records would take more than ``stream_above`` bytes
    (default: half the free memory). Refused when its in-system state (or, when it cannot be
    streamed, its records too) would take more than the free memory."""
    free = free_memory() if free is None else free
    if free is None:
        return can_stream and stream_above is not None and fp.records_bytes > stream_above
    limit = free / 2 if stream_above is None else stream_above
    stream = can_stream and fp.records_bytes > limit
    need = fp.state_bytes if stream else fp.records_bytes + fp.state_bytes
    if need > free:
        hint = "" if can_stream else f" ({no_stream})"
        raise RunTooLarge(f"{what} would need about {human(need)} of memory ({fp.describe()}) but the machine "
                          f"has {human(free)} free{hint}: {advice}")
    return stream
