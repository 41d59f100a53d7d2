"""Write a run to a directory: requests, iterations, batches (if recorded) and summary.json.

Tables are Parquet by default (``requests.parquet`` ...) or CSV on request (``format="csv"``:
``requests.csv`` ..., byte for byte what this function wrote before Parquet existed). Read them
back with :func:`llmqueue.sim.tables.read_run_table`, which takes either.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .summary import RunSummary

from .manifest import atomic_path, seal, unseal, write_text
from .tables import check_format, read_run_table, run_table_exists, write_table  # noqa: F401 (re-exported)


def jsonable(x: Any) -> Any:
    """``x`` with NaN/inf as None, numpy scalars as Python numbers and dict keys as strings, for
    json.dumps (every summary.json and result.json the package writes goes through it)."""
    if hasattr(x, "item") and not isinstance(x, (list, tuple, dict)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x


def write_summary(summary, out: Path) -> None:
    """``summary.json``: a :class:`~llmqueue.sim.summary.RunSummary` (or
    :class:`~llmqueue.sim.summary.NetworkSummary`), extras included, as its flat keys."""
    write_text(Path(out) / "summary.json", json.dumps(jsonable(summary.to_dict()), indent=2) + "\n")


def _write_frame(df, path_stem: Path, format: str, columns: list[str], na_rep: str = "") -> None:
    """One DataFrame as ``<stem>.<format>`` (CSV through pandas, as before; Parquet through
    pyarrow with the streamed writer's dtypes where they are known)."""
    if format == "csv":
        with atomic_path(path_stem.with_suffix(".csv")) as tmp:
            df[columns].to_csv(tmp, index=False, na_rep=na_rep)
        return
    from .fast.sinks import ITERATION_DTYPES, REQUEST_DTYPES
    known = {**REQUEST_DTYPES, **ITERATION_DTYPES}
    cols = {c: df[c].to_numpy() for c in columns}
    dtypes: dict[str, Any] = {c: known.get(c, cols[c].dtype if cols[c].dtype != object else object) for c in columns}
    if any(d is object for d in dtypes.values()):         # text columns (batches): let pyarrow type them
        import pyarrow as pa
        import pyarrow.parquet as pq
        with atomic_path(path_stem.with_suffix(".parquet")) as tmp:
            pq.write_table(pa.Table.from_pandas(df[columns], preserve_index=False), tmp)
        return
    write_table(path_stem.with_suffix(".parquet"), "parquet", cols, columns, dtypes)


def write_run(res, out: Path, extra: dict | None = None, format: str = "parquet",
              command: str = "simulate") -> RunSummary:
    """Write the run's tables and summary; returns the summary (``extra`` in its ``extra``). A run with KV memory also
    gets preemptions.csv and memory.csv (per-iteration memory). Every file is written atomically and
    ``manifest.json`` last (:func:`~llmqueue.sim.manifest.seal`, naming ``command`` and
    ``extra["scenario"]``): write any further file of the run before calling this.

    ``res`` is an in-memory :class:`~llmqueue.sim.simulate.SimResult` (tables written here) or
    a :class:`~llmqueue.sim.fast.StreamedResult` of :func:`~llmqueue.sim.stream.run_to_disk`
    into ``out`` (its tables are already there: only summary.json is written)."""
    check_format(format)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unseal(out)
    from .fast.result import StreamedResult
    if isinstance(res, StreamedResult):
        if res.out_dir is None or Path(res.out_dir).resolve() != out.resolve() or res.format != format:
            raise ValueError(f"write_run: this streamed run wrote its {res.format} tables to "
                             f"{res.out_dir}, not {format} tables to {out}")
    else:
        from .engine import IterationLog, RequestLog
        session_cols = [c for c in ("session_id", "turn") if c in res.requests.columns]   # a session workload
        _write_frame(res.requests, out / "requests", format, list(RequestLog.COLUMNS) + session_cols)
        _write_frame(res.iterations, out / "iterations", format, list(IterationLog.COLUMNS))
        if res.compositions is not None:
            from .batches import compositions_table
            table = compositions_table(res.compositions, res.labels)
            _write_frame(table, out / "batches", format, list(table.columns))
        if res.sessions is not None:             # a session workload: one row per session
            res.sessions.to_csv(out / "sessions.csv", index=False)
        if res.memory is not None:               # the KV memory's records (what preempted when)
            with atomic_path(out / "preemptions.csv") as tmp:
                res.preemptions.to_csv(tmp, index=False)
            with atomic_path(out / "memory.csv") as tmp:
                res.memory_iterations.to_csv(tmp, index=False)
    summary = res.summary().with_extra(extra)
    write_summary(summary, out)
    seal(out, command, scenario=(extra or {}).get("scenario"))
    return summary
