"""Reading input text files with errors that point: file, line and column as an editor shows them.

Every reader of an input file (CSV traces, one-number-per-line length files, JSONL traces)
uses these helpers so that its errors read the same: :class:`~llmqueue.errors.TraceError`
``path:line:column (name): reason``, with

* lines counted as a text editor counts them: from 1, every ``\\n``, ``\\r\\n`` or lone ``\\r``
  ends a line, blank lines count, and a quoted CSV field that spans lines moves the count on;
* a file that is not text (NUL bytes: compressed, Parquet, an executable) named as such, with
  a hint from its first bytes, and a byte that is not UTF-8 located at its line and column;
* counts bounded before they are converted (:func:`parse_count`), so a cell of 5,000 digits or
  of 10^20 is one clear message, not Python's digit-limit error or an int64 OverflowError.

A JSONL reader iterates :func:`text_lines`; a CSV reader opens the file with :func:`open_text`
and counts lines with :class:`LineCounter`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO

from ..engine.limits import MAX_COUNT_DIGITS, MAX_REQUEST_TOKENS, too_large
from ..errors import TraceError

#: How many leading bytes are looked at to tell a binary file.
SNIFF_BYTES = 1 << 16

_MAGIC = ((b"\x1f\x8b", "a gzip-compressed file; decompress it first"),
          (b"PAR1", "a Parquet file; export it as CSV"),
          (b"PK\x03\x04", "a zip archive; extract it first"),
          (b"\x28\xb5\x2f\xfd", "a zstd-compressed file; decompress it first"),
          (b"BZh", "a bzip2-compressed file; decompress it first"),
          (b"\x7fELF", "an executable"))


def position(data: bytes, offset: int) -> tuple[int, int]:
    """(line, column), both from 1, of byte ``offset`` of ``data`` as an editor counts them
    (``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line; the column counts characters, with a
    byte that is not UTF-8 counted as one)."""
    head = data[:offset]
    line = 1 + head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n")
    start = max(head.rfind(b"\n"), head.rfind(b"\r")) + 1
    return line, len(head[start:].decode("utf-8", errors="replace")) + 1


def binary(head: bytes) -> tuple[int, int, str] | None:
    """``(line, column, reason)`` if the leading bytes ``head`` of a file show it is not text
    (a known binary format, or a NUL byte), else None."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return 1, 1, f"not a text file: this looks like {what}"
    nul = head.find(b"\0")
    if nul >= 0:
        line, col = position(head, nul)
        return line, col, f"not a text file: it holds binary data (a NUL byte at line {line}, character {col})"
    return None


def check_text(path: str | os.PathLike[str]) -> None:
    """Raise a TraceError if ``path`` is not a UTF-8 text file (it names what it looks like)."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        found = binary(f.read(SNIFF_BYTES))
    if found is not None:
        raise TraceError(p, found[0], found[2], found[1])


def utf8_error(path: str | os.PathLike[str]) -> TraceError:
    """The TraceError for the first byte of ``path`` that is not UTF-8 (call it when decoding
    failed: the file is read again in binary to find the byte's line and column)."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        data = f.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col, reason = utf8_problem(data, e)
        return TraceError(p, line, reason, col)
    return TraceError(p, 1, "not a UTF-8 text file")


def utf8_problem(data: bytes, e: UnicodeDecodeError) -> tuple[int, int, str]:
    """``(line, column, reason)`` for a UTF-8 decoding error of the whole of ``data``."""
    line, col = position(data, e.start)
    return line, col, (f"not a UTF-8 text file: byte 0x{data[e.start]:02x} at line {line}, character {col} "
                       f"cannot be decoded ({e.reason}); save the file as UTF-8")


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """``path`` opened for reading as UTF-8 text (a BOM is skipped, line ends are kept as written
    so that the csv module sees quoted line breaks), after :func:`check_text`."""
    check_text(path)
    return open(path, newline="", encoding="utf-8-sig")


def text_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) of every line of a UTF-8 text file, blank ones
    included, numbered as an editor numbers them."""
    p = os.fspath(path)
    line = 0
    with open_text(p) as f:
        try:
            for raw in f:
                # newline="" splits at \n, \r\n and a lone \r, as an editor does
                line += 1
                yield line, raw.rstrip("\r\n")
        except UnicodeDecodeError:
            raise utf8_error(p) from None


def newlines(text: str) -> int:
    """How many line ends ``text`` holds (``\\r\\n`` counts once)."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def parse_count(text: str, what: str = "a token count", bound: int = MAX_REQUEST_TOKENS) -> int | str:
    """A non-negative integer in plain ASCII digits, at most ``bound``; else the reason (a str)."""
    if not (text.isascii() and text.isdigit()):
        return f"expected a non-negative integer, got {text!r}" if len(text) <= 40 else \
            f"expected a non-negative integer, got a field of {len(text)} characters"
    if len(text.lstrip("0")) > MAX_COUNT_DIGITS or int(text) > bound:
        return too_large(what, text.lstrip("0"), bound)
    return int(text)
