"""The result of a run whose records were streamed to disk.

It holds what the summary needs (totals, per-request latencies, the ITL multiset, the backlog
at the chosen resolution) and the paths of the files; :meth:`StreamedResult.summary` returns
the same keys as :func:`llmqueue.sim.metrics.summarize` does for an in-memory run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...engine.batch_time import BatchTimeModel
from ...policies.base import Policy
from ..metrics import latency_stats
from .itl import ItlHistogram, itl_stats


def _read(path: Path):
    import pandas as pd

    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@dataclass
class StreamedResult:
    """A run written to ``out_dir``; times in seconds.

    ``requests_path``: one row per request (``RequestLog.COLUMNS``) in request-id order, like
    ``SimResult.requests`` (None if the run wrote no files).
    ``iterations_path``: every iteration (``IterationLog.COLUMNS``), or None if not written.
    ``backlog``: backlog and requests in the system per ``backlog_resolution_s`` bin
    (:class:`~llmqueue.sim.fast.sinks.BacklogSeries`).
    """

    out_dir: Path | None
    requests_path: Path | None
    iterations_path: Path | None
    backlog: object
    end_time: float
    tokens_arrived: int
    tokens_processed: int
    tokens_left: int
    policy: Policy
    batch_time: BatchTimeModel
    num_requests: int
    completed: int
    output_tokens: int
    num_iterations: int
    busy_s: float
    batch_tokens: int
    max_backlog_tokens: int
    max_num_in_system: int
    latencies: dict[str, np.ndarray]
    itl: ItlHistogram
    engine: str
    labels: dict[int, str] = field(default_factory=dict)
    format: str = "parquet"
    #: batch compositions are not recorded on a streamed run (the in-memory path records them)
    compositions: None = None

    def read_requests(self):
        """The per-request table (a DataFrame), in request-id order like ``SimResult.requests``."""
        if self.requests_path is None:
            raise ValueError("this run wrote no files (out_dir=None)")
        return _read(self.requests_path)

    def read_iterations(self):
        if self.iterations_path is None:
            raise ValueError("this run did not write its iterations (write_iterations=False)")
        return _read(self.iterations_path)

    def summary(self) -> dict:
        """The metrics of ``sim.metrics.summarize``, from the streamed aggregates (the same
        numbers, to the last bit, as summarising the in-memory tables of the run)."""

        span = self.end_time
        it = self.num_iterations
        s: dict = {
            "policy": self.policy.describe(),
            "batch_time": self.batch_time.describe(),
            "duration_s": span,
            "num_requests": self.num_requests,
            "completed": self.completed,
            "in_system_at_end": self.num_requests - self.completed,
            "num_iterations": it,
            "tokens_arrived": self.tokens_arrived,
            "tokens_processed": self.tokens_processed,
            "tokens_left": self.tokens_left,
            "tokens_conserved": self.tokens_arrived == self.tokens_processed + self.tokens_left,
            "token_throughput": self.tokens_processed / span if span > 0 else 0.0,
            "output_throughput": self.output_tokens / span if span > 0 else 0.0,
            "request_throughput": self.completed / span if span > 0 else 0.0,
            "busy_fraction": self.busy_s / span if span > 0 else 0.0,
            "mean_batch_tokens": self.batch_tokens / it if it else 0.0,
            "max_backlog_tokens": self.max_backlog_tokens,
            "final_backlog_tokens": self.tokens_left,
            "max_num_in_system": self.max_num_in_system,
        }
        for name in ("ttft", "tpot", "e2el"):
            s.update(latency_stats(name, self.latencies[name]))
        s.update(itl_stats(self.itl))
        return s
