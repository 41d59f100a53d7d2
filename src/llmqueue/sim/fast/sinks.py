"""Where the fast core's records go: kept in memory (for a :class:`SimResult`) or streamed to disk.

Both sinks receive the same column chunks, one per epoch: per-request records (columns of
``RequestLog.COLUMNS``, in completion order, then the unfinished requests in FCFS order) and
per-iteration rows (``IterationLog.COLUMNS``). :class:`MemorySink` keeps them;
:class:`DiskSink` appends them to Parquet (or CSV) files (:mod:`llmqueue.sim.tables`), in
request-id order, and keeps only what the summary needs: running totals, the iteration
durations (one float each, for an exact busy time), the per-request latencies (3 floats and an
id per completed request), and the backlog at a chosen resolution (:class:`BacklogSeries`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..engine import IterationLog, RequestLog
from ..tables import TableWriter, check_format

REQUEST_COLUMNS = list(RequestLog.COLUMNS)
ITERATION_COLUMNS = list(IterationLog.COLUMNS)
_INT = ("request_id", "prompt_tokens", "decode_tokens")
REQUEST_DTYPES = {c: ("int64" if c in _INT else "float64") for c in REQUEST_COLUMNS}
ITERATION_DTYPES = {c: ("float64" if c.endswith("time") else "int64") for c in ITERATION_COLUMNS}


class BacklogSeries:
    """Backlog and requests in the system, one row per ``resolution_s`` time bin: sampled at the
    first iteration boundary in the bin, plus the bin's largest backlog and iteration count.
    Bins in which no iteration starts (the engine idles, or one iteration spans them) have no
    row."""

    COLUMNS = ("time", "backlog_tokens", "max_backlog_tokens", "num_in_system", "iterations")

    def __init__(self, resolution_s: float) -> None:
        if not (math.isfinite(resolution_s) and resolution_s > 0):
            raise ValueError(f"backlog_resolution_s must be a finite number > 0, got {resolution_s}")
        self.resolution = float(resolution_s)
        self._parts: list[dict[str, np.ndarray]] = []

    def add(self, start: np.ndarray, backlog: np.ndarray, nsys: np.ndarray) -> None:
        if start.size == 0:
            return
        b = np.floor(start / self.resolution).astype(np.int64)
        first = np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))
        part = {"bin": b[first], "backlog_tokens": backlog[first],
                "max_backlog_tokens": np.maximum.reduceat(backlog, first),
                "num_in_system": nsys[first],
                "iterations": np.diff(np.append(first, b.size))}
        if self._parts and self._parts[-1]["bin"][-1] == part["bin"][0]:
            last = self._parts[-1]           # the bin goes on from the previous chunk
            last["max_backlog_tokens"][-1] = max(last["max_backlog_tokens"][-1],
                                                 part["max_backlog_tokens"][0])
            last["iterations"][-1] += part["iterations"][0]
            part = {k: v[1:] for k, v in part.items()}
        if part["bin"].size:
            self._parts.append(part)

    def frame(self):
        import pandas as pd

        if not self._parts:
            return pd.DataFrame({c: np.array([], dtype=np.float64 if c == "time" else np.int64)
                                 for c in self.COLUMNS})
        cat = {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]}
        out = {"time": cat.pop("bin") * self.resolution}
        out.update(cat)
        return pd.DataFrame(out)[list(self.COLUMNS)]


class RunTotals:
    """What the summary needs from the iteration rows, accumulated chunk by chunk."""

    def __init__(self) -> None:
        self.iterations = 0
        self._busy: list[np.ndarray] = []
        self.batch_tokens = 0
        self.max_backlog = 0
        self.max_in_system = 0

    def add(self, it: dict[str, np.ndarray]) -> None:
        n = it["start_time"].size
        if n == 0:
            return
        self.iterations += n
        self._busy.append(it["end_time"] - it["start_time"])
        self.batch_tokens += int(it["prefill_tokens"].sum() + it["decode_tokens"].sum())
        self.max_backlog = max(self.max_backlog, int(it["backlog_tokens"].max()))
        self.max_in_system = max(self.max_in_system, int(it["num_in_system"].max()))

    @property
    def busy_s(self) -> float:
        """Sum of the iteration durations, as one numpy sum over all of them (so the same float
        as the in-memory table's sum, not a sum of per-chunk sums)."""
        if len(self._busy) > 1:
            self._busy = [np.concatenate(self._busy)]
        return float(self._busy[0].sum()) if self._busy else 0.0


class MemorySink:
    """Keeps every chunk; builds the generic engine's DataFrames at the end."""

    def __init__(self) -> None:
        self._req: list[dict[str, np.ndarray]] = []
        self._it: list[dict[str, np.ndarray]] = []

    def add_requests(self, cols: dict[str, np.ndarray]) -> None:
        if cols["request_id"].size:
            self._req.append(cols)

    def add_iterations(self, cols: dict[str, np.ndarray]) -> None:
        if cols["start_time"].size:
            self._it.append(cols)

    def requests_frame(self):
        """Sorted by request id (stable), like the generic engine's table."""
        import pandas as pd

        if not self._req:
            return pd.DataFrame([], columns=REQUEST_COLUMNS)
        df = pd.DataFrame({c: np.concatenate([p[c] for p in self._req]) for c in REQUEST_COLUMNS})
        return df.sort_values("request_id", kind="stable").reset_index(drop=True)

    def iterations_frame(self):
        import pandas as pd

        if not self._it:
            return pd.DataFrame({c: np.array([], dtype=np.float64 if c.endswith("time") else np.int64)
                                 for c in ITERATION_COLUMNS})
        return pd.DataFrame({c: np.concatenate([p[c] for p in self._it]) for c in ITERATION_COLUMNS})


class DiskSink:
    """Streams records to ``out_dir`` (``requests.<fmt>``, ``iterations.<fmt>``) and keeps what
    the summary needs; with ``out_dir=None`` it writes nothing and only keeps the summary's inputs.

    Request records reach the sink in completion order; the sink holds them until the driver
    says that no earlier request id can come any more (:meth:`release`), and writes them sorted
    by request id: the file is the in-memory table's order, and only the records of requests
    still in flight are held."""

    def __init__(self, out_dir: Path | None, fmt: str = "parquet", write_iterations: bool = True,
                 backlog_resolution_s: float = 1.0) -> None:
        self.fmt = check_format(fmt)
        self.out_dir = None if out_dir is None else Path(out_dir)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.requests_path = self.out_dir / f"requests.{fmt}" if self.out_dir is not None else None
        self.iterations_path = (self.out_dir / f"iterations.{fmt}"
                                if self.out_dir is not None and write_iterations else None)
        self._req = (TableWriter(self.requests_path, fmt, REQUEST_COLUMNS, REQUEST_DTYPES)
                     if self.requests_path is not None else None)
        self._it = (TableWriter(self.iterations_path, fmt, ITERATION_COLUMNS, ITERATION_DTYPES)
                    if self.iterations_path is not None else None)
        self.backlog = BacklogSeries(backlog_resolution_s)
        self.totals = RunTotals()
        self.num_requests = 0
        self.completed = 0
        self.output_tokens = 0
        self._lat: list[tuple[np.ndarray, ...]] = []
        self._held: list[dict[str, np.ndarray]] = []

    def add_requests(self, cols: dict[str, np.ndarray]) -> None:
        n = cols["request_id"].size
        if n == 0:
            return
        if self._req is not None:
            self._held.append(cols)
        self.num_requests += n
        comp = cols["completion_time"]
        done = ~np.isnan(comp)
        if done.any():
            arr, first = cols["arrival_time"][done], cols["first_token_time"][done]
            c, dec = comp[done], cols["decode_tokens"][done]
            with np.errstate(invalid="ignore", divide="ignore"):
                tpot = np.where(dec > 1, (c - first) / np.maximum(dec - 1, 1), np.nan)
            self._lat.append((cols["request_id"][done], first - arr, tpot, c - arr))
            self.completed += int(done.sum())
            self.output_tokens += int(dec.sum())

    def release(self, below: float) -> None:
        """Write the held records whose request id is below ``below`` (sorted by id)."""
        if not self._held or self._req is None or below == -math.inf:
            return
        cols = {c: np.concatenate([h[c] for h in self._held]) for c in REQUEST_COLUMNS}
        o = np.argsort(cols["request_id"], kind="stable")
        cols = {c: v[o] for c, v in cols.items()}
        k = int(np.searchsorted(cols["request_id"], below, "left")) if below != float("inf") else o.size
        if k:
            self._req.write({c: v[:k] for c, v in cols.items()})
        self._held = [{c: v[k:] for c, v in cols.items()}] if k < o.size else []

    def add_iterations(self, cols: dict[str, np.ndarray]) -> None:
        if cols["start_time"].size == 0:
            return
        if self._it is not None:
            self._it.write(cols)
        self.totals.add(cols)
        self.backlog.add(cols["start_time"], cols["backlog_tokens"], cols["num_in_system"])

    def latencies(self) -> dict[str, np.ndarray]:
        """ttft, tpot, e2el of the completed requests, in request-id order (as the generic
        engine's table lists them)."""
        if not self._lat:
            return {k: np.empty(0) for k in ("ttft", "tpot", "e2el")}
        rid, ttft, tpot, e2el = (np.concatenate(p) for p in zip(*self._lat))
        o = np.argsort(rid, kind="stable")
        return {"ttft": ttft[o], "tpot": tpot[o], "e2el": e2el[o]}

    def abort(self) -> None:
        """Drop the tables being written (the run was interrupted or failed)."""
        for w in (self._req, self._it):
            if w is not None:
                w.abort()

    def close(self) -> None:
        self.release(float("inf"))
        if self._req is not None:
            self._req.close()
        if self._it is not None:
            self._it.close()
