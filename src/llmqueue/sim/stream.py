"""Long runs with bounded memory: stream per-request and per-iteration records to disk.

:func:`simulate_to_disk` is :func:`~llmqueue.sim.simulate.simulate` for runs too long to hold:
the fast core writes records in chunks (Parquet by default, or CSV) as requests finish, and
keeps only running totals, 3 latencies per completed request, the inter-token gaps as an exact
multiset of distinct values, and the backlog at ``backlog_resolution_s``. The generic engine
can be asked for too (or is used by ``engine="auto"`` for a policy without a fast path); it
still holds the whole run in memory and writes the same files at the end.

:func:`run_to_disk` is the ``llmqueue simulate`` path: the fast core on a workload's numpy
blocks, writing exactly the tables :func:`~llmqueue.sim.output.write_run` writes for the
in-memory run; :func:`streams` says when it applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..engine.batch_time import BatchTimeModel
from ..engine.request import Request
from ..policies.base import Policy
from .fast.itl import ItlHistogram
from .fast.result import StreamedResult
from .fast.run import run_core, use_fast_core
from .fast.sinks import ITERATION_COLUMNS, REQUEST_COLUMNS, DiskSink
from .fast.state import fast_path_reason
from .manifest import atomic_path, seal, unseal


def streams(policy: Policy, batch_time: BatchTimeModel, *, record_composition: bool = False,
            memory: object | None = None) -> bool:
    """Whether :func:`run_to_disk` runs this engine: no KV memory model, no batch compositions
    asked for, and a policy and batch time the fast core runs exactly."""
    return memory is None and not record_composition and fast_path_reason(policy, batch_time) is None


def run_to_disk(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request],
                out_dir: str | Path | None, *, horizon: float | None = None, format: str = "parquet",
                **tuning) -> StreamedResult:
    """The user's ``simulate`` path for a long run: the fast core, records streamed to
    ``out_dir`` as they become final (``requests.<format>``, ``iterations.<format>``, the columns
    and values :func:`~llmqueue.sim.output.write_run` writes for the in-memory run, in the same
    order), nothing but the summary's inputs kept in memory. ``out_dir=None`` writes nothing.
    A workload's :class:`~llmqueue.workload.RequestStream` is read as numpy blocks, so no
    ``Request`` object is built. Write ``summary.json`` with ``write_run(result, out_dir)``.
    Raises :class:`FastPathUnavailable` for an engine the fast core cannot run (see :func:`streams`)."""
    use_fast_core("fast", policy, batch_time)
    if out_dir is not None:
        unseal(out_dir)      # the folder is not a finished run until write_run seals it again
    sink = DiskSink(None if out_dir is None else Path(out_dir), fmt=format)
    try:
        run = run_core(policy, batch_time, requests, sink, horizon=horizon, **tuning)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return _result(sink, run, policy, batch_time, "fast", backlog=None)


def _result(sink: DiskSink, run, policy: Policy, batch_time: BatchTimeModel, used: str,
            backlog) -> StreamedResult:
    t = sink.totals
    return StreamedResult(
        out_dir=sink.out_dir, requests_path=sink.requests_path, iterations_path=sink.iterations_path,
        backlog=backlog, end_time=run.end_time, tokens_arrived=run.tokens_arrived,
        tokens_processed=run.tokens_processed, tokens_left=run.tokens_left, policy=policy,
        batch_time=batch_time, num_requests=sink.num_requests, completed=sink.completed,
        output_tokens=sink.output_tokens, num_iterations=t.iterations, busy_s=t.busy_s,
        batch_tokens=t.batch_tokens, max_backlog_tokens=t.max_backlog,
        max_num_in_system=t.max_in_system, latencies=sink.latencies(), itl=run.itl, engine=used,
        labels=run.labels, format=sink.fmt)


def simulate_to_disk(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request],
                     out_dir: str | Path, *, horizon: float | None = None, engine: str = "auto",
                     fmt: str = "parquet", backlog_resolution_s: float = 1.0,
                     write_iterations: bool = True, **tuning) -> StreamedResult:
    """Run one engine, writing ``requests.<fmt>``, ``iterations.<fmt>`` (unless
    ``write_iterations=False``), ``backlog.<fmt>`` and ``summary.json`` to ``out_dir``.
    ``tuning``: memory knobs of the fast core (:func:`llmqueue.sim.fast.run_core`)."""
    fast = use_fast_core(engine, policy, batch_time)
    out = Path(out_dir)
    unseal(out)
    sink = DiskSink(out, fmt=fmt, write_iterations=write_iterations,
                    backlog_resolution_s=backlog_resolution_s)
    run: Any
    try:
        if fast:
            run = run_core(policy, batch_time, requests, sink, horizon=horizon, **tuning)
            used = "fast"
        else:
            from .simulate import simulate
            res = simulate(policy, batch_time, requests, horizon=horizon, engine="generic")
            sink.add_requests({c: res.requests[c].to_numpy() for c in REQUEST_COLUMNS})
            sink.add_iterations({c: res.iterations[c].to_numpy() for c in ITERATION_COLUMNS})
            itl = ItlHistogram()
            v, c = np.unique(res.itl, return_counts=True)
            itl.add(v, c)
            run = SimpleNamespace(itl=itl, labels=res.labels, end_time=res.end_time,
                                  tokens_arrived=res.tokens_arrived, tokens_processed=res.tokens_processed,
                                  tokens_left=res.tokens_left)
            used = "generic"
    except BaseException:
        sink.abort()
        raise
    sink.close()
    backlog = sink.backlog.frame()
    with atomic_path(out / f"backlog.{fmt}") as tmp:
        if fmt == "csv":
            backlog.to_csv(tmp, index=False)
        else:
            backlog.to_parquet(tmp, index=False)
    result = _result(sink, run, policy, batch_time, used, backlog)
    from .output import write_summary
    write_summary(result.summary().with_extra({"engine": used}), out)
    seal(out, "simulate_to_disk")
    return result
