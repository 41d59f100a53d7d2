"""Reading Mooncake's traces: JSON lines with chained block hashes (FAST 2025 release).

Each non-blank line is one request, a JSON object with ``timestamp`` (arrival, milliseconds from
the start), ``input_length`` (prompt tokens), ``output_length`` (decode tokens) and ``hash_ids``
(one id per ``block_tokens``-token block of the prompt, 512 in Mooncake's traces; equal ids mean
equal content of the whole prompt up to the end of that block, so those blocks' KV cache can be
reused). A request gets ``block_hashes = tuple(hash_ids)`` and ``hash_block_tokens =
block_tokens`` (:class:`~llmqueue.engine.request.Request`); its arrival time is its timestamp
minus the first one, in seconds. Other keys are ignored.

Requests get ids 0..n-1 in file order; the file must be sorted by timestamp. Blank lines are
skipped. Anything malformed raises :class:`~llmqueue.errors.TraceError` naming file, line,
column (of the key's name in the line, or of the JSON syntax error) and key, as the CSV reader
(:mod:`.traces`) does.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from ..errors import TraceError
from .arrays import RequestArrays

KEYS = ("timestamp", "input_length", "output_length", "hash_ids")
BLOCK_TOKENS = 512


def is_mooncake(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a JSON-lines trace: a ``.jsonl`` / ``.json`` name, or a first
    non-blank character ``{``."""
    p = os.fspath(path)
    if p.lower().endswith((".jsonl", ".json")):
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return False
    return head[:1] == b"{"


def _int(value: Any) -> int | None:
    """A non-negative JSON integer (not a bool, not a float), else None."""
    return value if type(value) is int and value >= 0 else None


def read_mooncake_arrays(path: str | os.PathLike[str], block_tokens: int = BLOCK_TOKENS) -> RequestArrays:
    """All requests of a Mooncake JSON-lines trace as columns, ids 0..n-1 in file order."""
    p = os.fspath(path)
    if block_tokens < 1:
        raise ValueError(f"block_tokens must be >= 1, got {block_tokens}")
    times: list[float] = []
    prompts: list[int] = []
    decodes: list[int] = []
    hashes: list[tuple[int, ...]] = []
    origin: float | None = None
    last_ts, last_line = -math.inf, 0
    try:
        f = open(p, encoding="utf-8-sig")
    except OSError as e:
        raise TraceError(p, 1, f"cannot read the file ({e.strerror})") from None
    with f:
        line = 0
        try:
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue

                def fail(key: str | None, reason: str, text: str = text, line: int = line) -> TraceError:
                    col = text.find(f'"{key}"') + 1 if key is not None else 1
                    return TraceError(p, line, reason, max(col, 1), key)

                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    raise TraceError(p, line, f"not a JSON object: {e.msg}", e.colno) from None
                if not isinstance(obj, dict):
                    raise TraceError(p, line, f"expected a JSON object {{...}} with keys {', '.join(KEYS)}, "
                                     f"got {type(obj).__name__}", 1)
                for key in KEYS:
                    if key not in obj:
                        raise fail(None, f"missing key {key!r}: a Mooncake line has {', '.join(KEYS)}")
                ts = obj["timestamp"]
                if type(ts) not in (int, float) or not (math.isfinite(ts) and ts >= 0):
                    raise fail("timestamp", f"expected a finite number of milliseconds >= 0, got {ts!r}")
                if ts < last_ts:
                    raise fail("timestamp", f"arrivals go backwards: {ts!r} is earlier than {last_ts!r} on line "
                               f"{last_line}; sort the file by timestamp")
                counts = []
                for key in ("input_length", "output_length"):
                    n = _int(obj[key])
                    if n is None:
                        raise fail(key, f"expected a non-negative integer, got {obj[key]!r}")
                    counts.append(n)
                if counts[0] == counts[1] == 0:
                    raise fail("output_length", "request has 0 input and 0 output tokens; it needs at least one")
                ids = obj["hash_ids"]
                if not isinstance(ids, list) or any(type(h) is not int for h in ids):
                    raise fail("hash_ids", f"expected a list of integers, got {str(ids)[:60]!r}")
                most = -(-counts[0] // block_tokens)
                if len(ids) > most:
                    raise fail("hash_ids", f"{len(ids)} block ids for {counts[0]} input tokens: at most {most} "
                               f"blocks of {block_tokens} tokens")
                if origin is None:
                    origin = float(ts)
                times.append((ts - origin) / 1000.0)
                prompts.append(counts[0])
                decodes.append(counts[1])
                hashes.append(tuple(ids))
                last_ts, last_line = ts, line
        except UnicodeDecodeError as e:
            raise TraceError(p, line + 1, f"not a UTF-8 text file ({e.reason})") from None
    n = len(times)
    if not n:
        raise TraceError(p, 1, "empty file: expected JSON lines with keys " + ", ".join(KEYS))
    col = np.empty(n, dtype=object)
    col[:] = hashes
    return RequestArrays(np.arange(n, dtype=np.int64), np.array(times, dtype=np.float64),
                         np.array(prompts, dtype=np.int64), np.array(decodes, dtype=np.int64),
                         block_hashes=col, hash_block_tokens=block_tokens)
