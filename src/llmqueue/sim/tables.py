"""Run tables on disk: Parquet (pyarrow) or CSV, written in chunks, read back by one function.

A run directory holds ``requests``, ``iterations`` and optionally ``batches`` tables, each as
``<name>.parquet`` (the default) or ``<name>.csv``. :class:`TableWriter` appends column chunks
(numpy arrays) without pandas: Parquet through a pyarrow ``ParquetWriter`` (one row group per
chunk), CSV through numpy's float formatting, which is the shortest repr that pandas' ``to_csv``
also writes, so a CSV written here is byte-identical to the one pandas writes for the same
columns (NaN as the empty field). :func:`read_run_table` reads either into a DataFrame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .manifest import temporary_name

FORMATS = ("parquet", "csv")


def check_format(fmt: str) -> str:
    """``fmt`` if it is a table format we write, else a ValueError naming the choices."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def _csv_field(col: np.ndarray, na_rep: str) -> list[str]:
    """The text pandas' ``to_csv`` writes for a numeric column."""
    col = np.asarray(col)
    text = col.astype(str)
    if col.dtype.kind == "f":
        nan = np.isnan(col)
        if nan.any():
            text = text.astype(object)
            text[nan] = na_rep
    return text.tolist()


def csv_rows(cols: dict[str, np.ndarray], columns: list[str], na_rep: str = "") -> str:
    """CSV lines (no header) of numeric columns, each line ending with a newline."""
    n = len(cols[columns[0]])
    if n == 0:
        return ""
    fields = [_csv_field(cols[c], na_rep) for c in columns]
    return "\n".join(map(",".join, zip(*fields))) + "\n"


def _arrow(a: np.ndarray) -> Any:
    """A numeric numpy column as an Arrow array over the same buffer (NaN stays a value, as with
    ``pa.array``); unlike ``pa.array`` it does not import pandas, which costs the CLI 0.25 s."""
    import pyarrow as pa
    if a.dtype.kind not in "fiu":
        return pa.array(a)
    a = np.ascontiguousarray(a)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


class TableWriter:
    """Appends column chunks of ``columns`` to ``path`` (``fmt``: parquet or csv). The file is
    created on :meth:`close` even if no row was written (with the header / schema of ``dtypes``).
    Chunks go to a temporary name beside ``path``, renamed to ``path`` on :meth:`close`: a run cut
    short never leaves a table that looks whole."""

    def __init__(self, path: Path, fmt: str, columns: list[str], dtypes: dict[str, Any],
                 na_rep: str = "") -> None:
        self.path, self.fmt, self.columns, self.dtypes = Path(path), check_format(fmt), columns, dtypes
        self.na_rep = na_rep
        self.tmp_path = temporary_name(self.path)
        self._pq: Any = None
        self._csv: Any = None
        self.rows = 0

    def write(self, cols: dict[str, np.ndarray]) -> None:
        if self.fmt == "csv":
            if self._csv is None:
                self._csv = open(self.tmp_path, "w", newline="", encoding="utf-8")
                self._csv.write(",".join(self.columns) + "\n")
            self._csv.write(csv_rows(cols, self.columns, self.na_rep))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            table = pa.Table.from_arrays([_arrow(np.asarray(cols[c], dtype=self.dtypes[c])) for c in self.columns],
                                         names=self.columns)
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.tmp_path, table.schema, use_dictionary=False)
            self._pq.write_table(table)
        self.rows += len(cols[self.columns[0]])

    def close(self) -> None:
        if self._pq is None and self._csv is None:
            self.write({c: np.empty(0, dtype=self.dtypes[c]) for c in self.columns})
        if self._pq is not None:
            self._pq.close()
        if self._csv is not None:
            self._csv.close()
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        """Drop what was written (a run cut short): no file at ``path``, no temporary one left."""
        for f in (self._pq, self._csv):
            if f is not None:
                try:
                    f.close()
                except Exception:  # noqa: BLE001 (closing a half-written file: its error is not the news)
                    pass
        self._pq = self._csv = None
        if self.tmp_path.exists():
            self.tmp_path.unlink()


def write_table(path: Path, fmt: str, cols: dict[str, np.ndarray], columns: list[str],
                dtypes: dict[str, Any], na_rep: str = "") -> None:
    """One whole table at once."""
    w = TableWriter(path, fmt, columns, dtypes, na_rep)
    w.write(cols)
    w.close()


def read_run_table(run_dir: str | Path, name: str):
    """The table ``name`` (``requests``, ``iterations``, ``batches``, ...) of a run directory as a
    DataFrame, from ``<name>.parquet`` or ``<name>.csv`` (whichever exists; Parquet first).
    Raises FileNotFoundError naming both if neither does."""
    import pandas as pd

    d = Path(run_dir)
    pq, csv = d / f"{name}.parquet", d / f"{name}.csv"
    if pq.is_file():
        return pd.read_parquet(pq)
    if csv.is_file():
        return pd.read_csv(csv)
    raise FileNotFoundError(f"{d}: no {name}.parquet or {name}.csv")


def run_table_exists(run_dir: str | Path, name: str) -> bool:
    """Whether the run directory has the table ``name`` in either format."""
    d = Path(run_dir)
    return (d / f"{name}.parquet").is_file() or (d / f"{name}.csv").is_file()
