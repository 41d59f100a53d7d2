"""Latency metrics of a run, with vLLM's benchmark names (the summary itself: :mod:`.summary`).

Latency conventions (spec section 7): TTFT is arrival to the first output token (the end of the
first decode iteration); E2E (``e2el``) is arrival to completion; ITL are the gaps between
consecutive output tokens of a request (what the paper calls TBT); TPOT is a request's mean
gap, (completion - first token) / (decode_tokens - 1). Latencies are reported in ms under
vLLM's names (``mean_ttft_ms``, ``p99_ttft_ms`` ...); everything else is in seconds.
"""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 99)


def latency_stats(name: str, seconds: np.ndarray) -> dict[str, float | None]:
    """mean/median/p50/p90/p99 of a latency sample, in ms, named ``<stat>_<name>_ms``."""
    x = np.asarray(seconds, dtype=float)
    x = x[np.isfinite(x)]
    out: dict[str, float | None] = {}
    if x.size == 0:
        out[f"mean_{name}_ms"] = None
        for p in PERCENTILES:
            out[f"p{p}_{name}_ms"] = None
        return out
    out[f"mean_{name}_ms"] = float(x.mean() * 1e3)
    for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES)):
        out[f"p{p}_{name}_ms"] = float(v * 1e3)
    return out


def request_latencies(requests) -> dict[str, np.ndarray]:
    """Per-request ttft, e2el and tpot (seconds) of the completed requests."""
    done = requests[requests["completion_time"].notna()]
    arr = done["arrival_time"].to_numpy()
    first = done["first_token_time"].to_numpy()
    comp = done["completion_time"].to_numpy()
    dec = done["decode_tokens"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(dec > 1, (comp - first) / np.maximum(dec - 1, 1), np.nan)
    return {"ttft": first - arr, "e2el": comp - arr, "tpot": tpot}
