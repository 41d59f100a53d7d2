"""Where the fast core's records go: kept in memory (for a :class:`SimResult`) or streamed to disk.

Both sinks receive the same column chunks, one per epoch: per-request records (columns of
``RequestLog.COLUMNS``, in completion order, then the unfinished requests in FCFS order) and
per-iteration rows (``IterationLog.COLUMNS``). :class:`MemorySink` keeps them;
:class:`DiskSink` appends them to Parquet (or CSV) files and keeps only what the summary needs:
running totals, the per-request latencies (3 floats and an id per completed request), and the
backlog at a chosen resolution (:class:`BacklogSeries`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine import IterationLog, RequestLog

REQUEST_COLUMNS = list(RequestLog.COLUMNS)
ITERATION_COLUMNS = list(IterationLog.COLUMNS)


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

    def frame(self) -> pd.DataFrame:
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
        self.busy_s = 0.0
        self.batch_tokens = 0
        self.max_backlog = 0
        self.max_in_system = 0

    def add(self, it: dict[str, np.ndarray]) -> None:
        n = it["start_time"].size
        if n == 0:
            return
        self.iterations += n
        self.busy_s += float((it["end_time"] - it["start_time"]).sum())
        self.batch_tokens += int(it["prefill_tokens"].sum() + it["decode_tokens"].sum())
        self.max_backlog = max(self.max_backlog, int(it["backlog_tokens"].max()))
        self.max_in_system = max(self.max_in_system, int(it["num_in_system"].max()))


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

    def requests_frame(self) -> pd.DataFrame:
        """Sorted by request id (stable), like the generic engine's table."""
        if not self._req:
            return pd.DataFrame([], columns=REQUEST_COLUMNS)
        df = pd.DataFrame({c: np.concatenate([p[c] for p in self._req]) for c in REQUEST_COLUMNS})
        return df.sort_values("request_id", kind="stable").reset_index(drop=True)

    def iterations_frame(self) -> pd.DataFrame:
        if not self._it:
            return pd.DataFrame({c: np.array([], dtype=np.float64 if c.endswith("time") else np.int64)
                                 for c in ITERATION_COLUMNS})
        return pd.DataFrame({c: np.concatenate([p[c] for p in self._it]) for c in ITERATION_COLUMNS})


class _TableWriter:
    """Appends column chunks to one Parquet or CSV file."""

    def __init__(self, path: Path, fmt: str, na_rep: str = "") -> None:
        self.path, self.fmt, self.na_rep = path, fmt, na_rep
        self._pq: Any = None
        self._header = True

    def write(self, cols: dict[str, np.ndarray], columns: list[str]) -> None:
        if self.fmt == "csv":
            pd.DataFrame({c: cols[c] for c in columns}).to_csv(
                self.path, mode="w" if self._header else "a", header=self._header, index=False,
                na_rep=self.na_rep)
            self._header = False
            return
        import pyarrow as pa
        import pyarrow.parquet as pq
        table = pa.Table.from_arrays([pa.array(np.asarray(cols[c])) for c in columns], names=columns)
        if self._pq is None:
            self._pq = pq.ParquetWriter(self.path, table.schema, use_dictionary=False)
        self._pq.write_table(table)

    def close(self, columns: list[str], dtypes: dict[str, str]) -> None:
        if self._pq is not None:
            self._pq.close()
        elif self._header:                  # nothing was written: an empty table with the header
            self.write({c: np.array([], dtype=dtypes[c]) for c in columns}, columns)
            if self._pq is not None:
                self._pq.close()


class DiskSink:
    """Streams records to ``out_dir`` (requests.<fmt>, iterations.<fmt>) and keeps summaries."""

    def __init__(self, out_dir: Path, fmt: str = "parquet", write_iterations: bool = True,
                 backlog_resolution_s: float = 1.0) -> None:
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        self.requests_path = self.out_dir / f"requests.{fmt}"
        self.iterations_path = self.out_dir / f"iterations.{fmt}" if write_iterations else None
        self._req = _TableWriter(self.requests_path, fmt)
        self._it = _TableWriter(self.iterations_path, fmt) if self.iterations_path is not None else None
        self.backlog = BacklogSeries(backlog_resolution_s)
        self.totals = RunTotals()
        self.num_requests = 0
        self.completed = 0
        self.output_tokens = 0
        self._lat: list[tuple[np.ndarray, ...]] = []

    def add_requests(self, cols: dict[str, np.ndarray]) -> None:
        n = cols["request_id"].size
        if n == 0:
            return
        self._req.write(cols, REQUEST_COLUMNS)
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

    def add_iterations(self, cols: dict[str, np.ndarray]) -> None:
        if cols["start_time"].size == 0:
            return
        if self._it is not None:
            self._it.write(cols, ITERATION_COLUMNS)
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

    def close(self) -> None:
        f, i = "float64", "int64"
        self._req.close(REQUEST_COLUMNS, {c: (i if c in ("request_id", "prompt_tokens", "decode_tokens")
                                               else f) for c in REQUEST_COLUMNS})
        if self._it is not None:
            self._it.close(ITERATION_COLUMNS,
                           {c: (f if c.endswith("time") else i) for c in ITERATION_COLUMNS})
