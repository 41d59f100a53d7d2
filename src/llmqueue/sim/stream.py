"""Long runs with bounded memory: stream per-request and per-iteration records to disk.

:func:`simulate_to_disk` is :func:`~llmqueue.sim.simulate.simulate` for runs too long to hold:
the fast core writes records in chunks (Parquet by default, or CSV) as requests finish, and
keeps only running totals, 3 latencies per completed request, the inter-token gaps as an exact
multiset of distinct values, and the backlog at ``backlog_resolution_s``. The generic engine
can be asked for too (or is used by ``engine="auto"`` for a policy without a fast path); it
still holds the whole run in memory and writes the same files at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..engine.batch_time import BatchTimeModel
from ..engine.request import Request
from ..policies.base import Policy
from .fast.itl import ItlHistogram
from .fast.result import StreamedResult
from .fast.run import run_core, use_fast_core
from .fast.sinks import ITERATION_COLUMNS, REQUEST_COLUMNS, DiskSink


def simulate_to_disk(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request],
                     out_dir: str | Path, *, horizon: float | None = None, engine: str = "auto",
                     fmt: str = "parquet", backlog_resolution_s: float = 1.0,
                     write_iterations: bool = True, **tuning) -> StreamedResult:
    """Run one engine, writing ``requests.<fmt>``, ``iterations.<fmt>`` (unless
    ``write_iterations=False``), ``backlog.<fmt>`` and ``summary.json`` to ``out_dir``.
    ``tuning``: memory knobs of the fast core (:func:`llmqueue.sim.fast.run_core`)."""
    fast = use_fast_core(engine, policy, batch_time)
    sink = DiskSink(Path(out_dir), fmt=fmt, write_iterations=write_iterations,
                    backlog_resolution_s=backlog_resolution_s)
    if fast:
        run = run_core(policy, batch_time, requests, sink, horizon=horizon, **tuning)
        itl, labels, used = run.itl, run.labels, "fast"
        end, arrived = run.end_time, run.tokens_arrived
        processed, left = run.tokens_processed, run.tokens_left
    else:
        from .simulate import simulate
        res = simulate(policy, batch_time, requests, horizon=horizon, engine="generic")
        sink.add_requests({c: res.requests[c].to_numpy() for c in REQUEST_COLUMNS})
        sink.add_iterations({c: res.iterations[c].to_numpy() for c in ITERATION_COLUMNS})
        itl = ItlHistogram()
        v, c = np.unique(res.itl, return_counts=True)
        itl.add(v, c)
        labels, used = res.labels, "generic"
        end, arrived = res.end_time, res.tokens_arrived
        processed, left = res.tokens_processed, res.tokens_left
    sink.close()
    backlog = sink.backlog.frame()
    backlog_path = sink.out_dir / f"backlog.{fmt}"
    if fmt == "csv":
        backlog.to_csv(backlog_path, index=False)
    else:
        backlog.to_parquet(backlog_path, index=False)
    t = sink.totals
    result = StreamedResult(
        out_dir=sink.out_dir, requests_path=sink.requests_path, iterations_path=sink.iterations_path,
        backlog=backlog, end_time=end, tokens_arrived=arrived, tokens_processed=processed,
        tokens_left=left, policy=policy, batch_time=batch_time, num_requests=sink.num_requests,
        completed=sink.completed, output_tokens=sink.output_tokens, num_iterations=t.iterations,
        busy_s=t.busy_s, batch_tokens=t.batch_tokens, max_backlog_tokens=t.max_backlog,
        max_num_in_system=t.max_in_system, latencies=sink.latencies(), itl=itl, engine=used,
        labels=labels)
    from .output import _jsonable
    summary = result.summary()
    summary["engine"] = used
    (sink.out_dir / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    return result
