"""The result of a run whose records were streamed to disk.

It holds what the summary needs (per-request latencies, the ITL multiset, the counts over the
iterations, the backlog at the chosen resolution) and the paths of the files; its totals and its
summary are those of every single-engine run (:class:`~llmqueue.sim.summary.RunTotals`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..summary import LatencyStats, RunCounts, RunTotals
from .itl import ItlHistogram, itl_stats


def _read(path: Path):
    import pandas as pd

    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@dataclass(kw_only=True)
class StreamedResult(RunTotals):
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

    def counts(self) -> RunCounts:
        """The summary's counts from the streamed aggregates (the same numbers, to the last bit,
        as counting the in-memory tables of the run)."""
        it = self.num_iterations
        return RunCounts(
            num_requests=self.num_requests, completed=self.completed, output_tokens=self.output_tokens,
            num_iterations=it, busy_s=self.busy_s, mean_batch_tokens=self.batch_tokens / it if it else 0.0,
            max_backlog_tokens=self.max_backlog_tokens, max_num_in_system=self.max_num_in_system,
            ttft=LatencyStats.of(self.latencies["ttft"]), tpot=LatencyStats.of(self.latencies["tpot"]),
            e2el=LatencyStats.of(self.latencies["e2el"]), itl=LatencyStats.from_dict(itl_stats(self.itl), "itl"))
