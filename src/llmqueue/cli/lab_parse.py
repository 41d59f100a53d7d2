"""Parsing of the list-valued command-line options (rates, seeds, budgets, k_max values)."""

from __future__ import annotations

import math


def _num(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{what}: {text!r} is not a finite number")
    return x


def number_list(text: str, what: str) -> list[float]:
    """``0.9,1.1`` or an inclusive range ``start:stop:step`` (both may be mixed: ``0.5,0.8:1.2:0.1``)."""
    out: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if ":" in part:
            bits = part.split(":")
            if len(bits) != 3:
                raise ValueError(f"{what}: a range is start:stop:step, got {part!r}")
            a, b, step = (_num(x, what) for x in bits)
            if step <= 0 or b < a:
                raise ValueError(f"{what}: a range needs start <= stop and step > 0, got {part!r}")
            n = int(math.floor((b - a) / step + 1e-9))
            out += [round(a + i * step, 12) for i in range(n + 1)]
        else:
            out.append(_num(part, what))
    if not out:
        raise ValueError(f"{what}: no values in {text!r}")
    return out


def int_list(text: str, what: str, allow_none: bool = False) -> list:
    """``1,2,3``, an inclusive range ``1-20``, and ``none`` where allowed."""
    out: list = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        if part in ("none", "null") and allow_none:
            out.append(None)
        elif "-" in part[1:]:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()) or int(b) < int(a):
                raise ValueError(f"{what}: a range is low-high with low <= high, got {part!r}")
            out += list(range(int(a), int(b) + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            extra = " or 'none'" if allow_none else ""
            raise ValueError(f"{what}: {part!r} is not a non-negative integer{extra}")
    if not out:
        raise ValueError(f"{what}: no values in {text!r}")
    return out
