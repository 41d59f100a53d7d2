"""Reading and writing request traces, with errors that point at the offending field.

Two formats, told apart by the header line:

* ours: columns ``arrival_time,prompt_tokens,decode_tokens`` in any order, optionally ``class``
  (-> ``job_class``, empty means ``"default"``), ``label`` (empty means no label), and
  ``prefix_id,prefix_tokens`` (a shared prompt prefix; empty means none / 0); arrival
  times in seconds. :func:`write_trace` writes it, with arrival times in ``repr`` precision so
  that a saved workload replays exactly.
* the Azure LLM inference trace: ``TIMESTAMP,ContextTokens,GeneratedTokens`` with timestamps
  ``YYYY-MM-DD HH:MM:SS.fffffff``. Timestamps are parsed to integer nanoseconds (no float on the
  way), and an arrival time is (timestamp - first timestamp) converted to seconds by one division,
  so it is the float nearest to the exact difference.

Requests get ids 0..n-1 in file order; the file must be sorted by arrival time. Blank lines are
skipped. Anything malformed raises :class:`TraceError` naming file, line, column and column name.
The parser is a plain loop over the csv module: the 19k-row Azure file takes well under 0.1 s.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

import numpy as np

from ..engine.limits import MAX_REQUESTS, too_large
from ..engine.request import Request
from ..errors import TraceError
from .arrays import RequestArrays
from .mooncake import is_mooncake, read_mooncake_arrays
from .textfile import newlines, open_text, parse_count, utf8_error

OURS = ("arrival_time", "prompt_tokens", "decode_tokens")
OURS_OPTIONAL = ("class", "label", "prefix_id", "prefix_tokens")
AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")

_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")


@lru_cache(maxsize=64)
def _day_seconds(day: str) -> int | None:
    try:
        return date.fromisoformat(day).toordinal() * 86400
    except ValueError:
        return None


def _timestamp_ns(text: str) -> int | None:
    """Nanoseconds since 0001-01-01 of ``YYYY-MM-DD HH:MM:SS[.f...]`` exactly, else None."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None
    day, hh, mm, ss, frac = m.groups()
    base = _day_seconds(day)
    h, mi, s = int(hh), int(mm), int(ss)
    if base is None or h > 23 or mi > 59 or s > 59:
        return None
    return (base + 3600 * h + 60 * mi + s) * 10**9 + int((frac or "").ljust(9, "0"))


def _rows(path: str) -> Iterable[tuple[int, list[str]]]:
    """(line of its first character, stripped fields) of every non-blank CSV record.

    Lines are counted as an editor counts them (see :mod:`.textfile`): a record that spans lines
    (a quoted field with line breaks) is numbered by its first line. Use :func:`_field_line` for
    the line of a later field of such a record.
    """
    with open_text(path) as f:
        reader = csv.reader(f)
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader, None)
            except csv.Error as e:
                # the reader stops on the line it was reading when it failed
                raise TraceError(path, max(reader.line_num, start), f"not a readable CSV record ({e})") from None
            except UnicodeDecodeError:
                raise utf8_error(path) from None
            if row is None:
                return
            if row and any(cell.strip() for cell in row):
                cells = [cell.strip() for cell in row]
                # a record that spans lines keeps its raw fields, to place a later field's line
                yield start, (_Row(cells).with_raw(row) if reader.line_num > start else cells)


class _Row(list):
    """A record's stripped fields, remembering the raw ones (to count line breaks inside them)."""

    raw: list[str]

    def with_raw(self, raw: list[str]) -> _Row:
        self.raw = raw
        return self


def _field_line(line: int, row: list[str], col: int) -> int:
    """The line field ``col`` of a record starting on ``line`` begins on."""
    raw = getattr(row, "raw", row)
    return line + sum(newlines(c) for c in raw[:col])


def _header(path: str, line: int, names: list[str]) -> tuple[str, dict[str, int]]:
    """The format (``"ours"`` or ``"azure"``) and the index of every column."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index:
            raise TraceError(path, line, "duplicate column", i + 1, name)
        index[name] = i
    for fmt, required, optional in (("ours", OURS, OURS_OPTIONAL), ("azure", AZURE, ())):
        if all(c in index for c in required):
            for i, name in enumerate(names):
                if name not in required and name not in optional:
                    raise TraceError(path, line, f"unknown column; expected {', '.join(required + optional)}",
                                     i + 1, name)
            return fmt, index
    raise TraceError(path, line, f"unrecognised header {','.join(names)!r}: expected columns "
                     f"{','.join(OURS)} (optionally {','.join(OURS_OPTIONAL)}) or {','.join(AZURE)} (Azure trace)")


TRACE_FORMATS = ("auto", "csv", "mooncake")


def read_trace(path: str | os.PathLike[str], fmt: str = "auto") -> list[Request]:
    """All requests of a trace file, ids 0..n-1 in file order."""
    return read_trace_arrays(path, fmt).to_requests()


def read_trace_arrays(path: str | os.PathLike[str], fmt: str = "auto") -> RequestArrays:
    """All requests of a trace file as columns (no object per request), ids 0..n-1 in file order.

    ``fmt``: "csv" (ours or Azure, told apart by the header), "mooncake" (JSON lines with block
    hashes, :mod:`.mooncake`) or "auto": Mooncake for a ``.jsonl`` / ``.json`` name or a file
    that starts with ``{``, else CSV."""
    if fmt not in TRACE_FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}: expected one of {', '.join(TRACE_FORMATS)}")
    if fmt == "mooncake" or (fmt == "auto" and is_mooncake(path)):
        return read_mooncake_arrays(path)
    p = os.fspath(path)
    rows = iter(_rows(p))
    first = next(rows, None)
    if first is None:
        raise TraceError(p, 1, "empty file: expected a header line such as " + ",".join(OURS))
    header_line = first[0]
    fmt, index = _header(p, *first)
    names = first[1]
    width = len(names)
    t_col, p_col, d_col = (index[c] for c in (OURS if fmt == "ours" else AZURE))
    c_col, l_col = index.get("class"), index.get("label")
    pid_col, ptok_col = index.get("prefix_id"), index.get("prefix_tokens")
    times: list[float] = []
    prompts: list[int] = []
    decodes: list[int] = []
    classes: list[str] = []
    labels: list[str | None] = []
    pids: list[str | None] = []
    ptoks: list[int] = []
    origin = None
    last_t, last_text, last_line = 0.0, "", 0

    def fail(line: int, col: int, reason: str, row: list[str] | None = None) -> TraceError:
        at = _field_line(line, row, min(col, len(row))) if row is not None else line
        return TraceError(p, at, reason, col + 1, names[col] if col < width else None)

    for line, row in rows:
        if len(row) != width:
            col = min(len(row), width)
            what = f"missing field {names[col]!r}" if len(row) < width else f"extra field {row[col]!r}"
            raise fail(line, col, f"{what}: expected {width} fields, got {len(row)}", row)
        text = row[t_col]
        if fmt == "ours":
            try:
                t = float(text) if text.isascii() and "_" not in text else math.nan
            except ValueError:
                t = math.nan
            if not (math.isfinite(t) and t >= 0):
                shown = repr(text) if len(text) <= 40 else f"a field of {len(text)} characters"
                raise fail(line, t_col, f"expected a finite number of seconds >= 0, got {shown}", row)
        else:
            ns = _timestamp_ns(text)
            if ns is None:
                shown = repr(text) if len(text) <= 40 else f"a field of {len(text)} characters"
                raise fail(line, t_col, f"expected a timestamp like '2023-11-16 18:17:03.9799600', got {shown}",
                           row)
            if origin is None:
                origin = ns
            t = (ns - origin) / 10**9
        if times and t < last_t:
            raise fail(line, t_col, f"arrivals go backwards: {text!r} is earlier than {last_text!r} on line "
                       f"{last_line}; sort the file by arrival time", row)
        counts = []
        for col in (p_col, d_col):
            n = parse_count(row[col], names[col])
            if isinstance(n, str):
                raise fail(line, col, n, row)
            counts.append(n)
        if counts[0] == counts[1] == 0:
            raise fail(line, d_col, "request has 0 prompt and 0 decode tokens; it needs at least one token", row)
        job_class = (row[c_col] or "default") if c_col is not None else "default"
        label = (row[l_col] or None) if l_col is not None else None
        prefix_id = (row[pid_col] or None) if pid_col is not None else None
        prefix_tokens = 0
        if ptok_col is not None and row[ptok_col]:
            given = parse_count(row[ptok_col], "prefix_tokens")
            if isinstance(given, str) or given > counts[0]:
                raise fail(line, ptok_col, f"expected an integer from 0 to prompt_tokens ({counts[0]}), "
                           f"got {row[ptok_col][:40]!r}", row)
            prefix_tokens = given
            if prefix_tokens and prefix_id is None:
                raise fail(line, ptok_col, "prefix_tokens > 0 needs a prefix_id", row)
        times.append(t)
        prompts.append(counts[0])
        decodes.append(counts[1])
        classes.append(job_class)
        labels.append(label)
        pids.append(prefix_id)
        ptoks.append(prefix_tokens)
        last_t, last_text, last_line = t, text, line
    n = len(times)
    if n == 0:
        raise TraceError(p, header_line, "no requests: the file has a header line but no rows")
    if n > MAX_REQUESTS:
        raise TraceError(p, last_line, too_large("the number of requests", n, MAX_REQUESTS))
    obj = lambda xs: np.array(xs + [None], dtype=object)[:n]  # noqa: E731
    jc: str | np.ndarray = classes[0] if n and classes.count(classes[0]) == n else obj(classes)
    return RequestArrays(np.arange(n, dtype=np.int64), np.array(times, dtype=np.float64),
                         np.array(prompts, dtype=np.int64), np.array(decodes, dtype=np.int64),
                         jc if n else "default", obj(labels) if labels.count(None) != n else None,
                         obj(pids) if pids.count(None) != n else None,
                         np.array(ptoks, dtype=np.int64) if pids.count(None) != n else None)


def write_trace(path: str | os.PathLike[str], requests: Iterable[Request]) -> None:
    """Write requests in our CSV format so that :func:`read_trace` gives them back exactly.

    Request ids are not written (reading numbers them 0..n-1). Arrival times must be
    nondecreasing, and ``job_class`` / ``label`` / ``prefix_id`` must not be the empty string
    (an empty field reads back as ``"default"`` / None). The ``prefix_id,prefix_tokens`` columns
    are written only when some request has a prefix.
    """
    p = os.fspath(path)
    requests = list(requests)
    prefixed = any(r.prefix_id is not None for r in requests)
    with open(p, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(OURS + (OURS_OPTIONAL if prefixed else OURS_OPTIONAL[:2]))
        last = -math.inf
        for r in requests:
            if r.arrival_time < last:
                raise ValueError(f"write_trace: request {r.request_id} arrives at {r.arrival_time} s, before "
                                 f"the previous one ({last} s); sort the requests by arrival time")
            if r.job_class == "" or r.label == "" or r.prefix_id == "":
                raise ValueError(f"write_trace: request {r.request_id} has an empty class or label (or prefix_id), "
                                 "which would read back as default/None; use a non-empty string or None")
            last = r.arrival_time
            row: tuple[object, ...] = (repr(float(r.arrival_time)), r.prompt_tokens, r.decode_tokens, r.job_class,
                   "" if r.label is None else r.label)
            if prefixed:
                row += ("" if r.prefix_id is None else r.prefix_id, r.prefix_tokens)
            out.writerow(row)


def read_column(path: str | os.PathLike[str], column: str | None = None) -> list[int]:
    """Non-negative integers from a one-number-per-line file, or from one column of a CSV file."""
    p = os.fspath(path)
    rows = iter(_rows(p))
    values: list[int] = []
    col, name = 0, None
    if column is not None:
        first = next(rows, None)
        if first is None:
            raise TraceError(p, 1, f"empty file: expected a CSV header with column {column!r}")
        line, names = first
        if column not in names:
            raise TraceError(p, line, f"no column {column!r}; the header has {', '.join(names)}")
        col, name = names.index(column), column
    for line, row in rows:
        if col >= len(row):
            raise TraceError(p, line, f"missing field: expected at least {col + 1} fields, got {len(row)}",
                             col + 1, name)
        if column is None and len(row) > 1:
            raise TraceError(p, _field_line(line, row, 1), f"expected one number per line, got {len(row)} "
                             "fields; for a CSV file pass column=", 2)
        n = parse_count(row[col])
        if isinstance(n, str):
            hint = "; for a CSV file with a header pass column=" if column is None and not values else ""
            raise TraceError(p, _field_line(line, row, col), f"{n}{hint}", col + 1, name)
        values.append(n)
    if not values:
        raise TraceError(p, 1, "no values in file")
    return values
