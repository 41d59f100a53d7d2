"""Throughput, backlog and latency metrics of a run, with vLLM's benchmark names.

Latency conventions (spec section 7): TTFT is arrival to the first output token (the end of the
first decode iteration); E2E (``e2el``) is arrival to completion; ITL are the gaps between
consecutive output tokens of a request (what the paper calls TBT); TPOT is a request's mean
gap, (completion - first token) / (decode_tokens - 1). Latencies are reported in ms under
vLLM's names (``mean_ttft_ms``, ``p99_ttft_ms`` ...); everything else is in seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

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


class RunRecords(Protocol):
    """What :func:`summarize` reads of a run (a :class:`~llmqueue.sim.simulate.SimResult`): named
    structurally, so that the metrics do not import the result type that calls them."""

    @property
    def requests(self) -> pd.DataFrame: ...
    @property
    def iterations(self) -> pd.DataFrame: ...
    @property
    def itl(self) -> np.ndarray: ...
    @property
    def end_time(self) -> float: ...
    @property
    def tokens_arrived(self) -> int: ...
    @property
    def tokens_processed(self) -> int: ...
    @property
    def tokens_left(self) -> int: ...
    @property
    def policy(self) -> Any: ...
    @property
    def batch_time(self) -> Any: ...


def summarize(res: RunRecords) -> dict:
    """The metrics written to summary.json."""
    req, it = res.requests, res.iterations
    span = res.end_time
    completed = int(req["completion_time"].notna().sum())
    done = req[req["completion_time"].notna()]
    out_tokens = int(done["decode_tokens"].sum())
    busy = float((it["end_time"] - it["start_time"]).sum()) if len(it) else 0.0
    s: dict = {
        "policy": res.policy.describe(),
        "batch_time": res.batch_time.describe(),
        "duration_s": span,
        "num_requests": int(len(req)),
        "completed": completed,
        "in_system_at_end": int(len(req) - completed),
        "num_iterations": int(len(it)),
        "tokens_arrived": res.tokens_arrived,
        "tokens_processed": res.tokens_processed,
        "tokens_left": res.tokens_left,
        "tokens_conserved": res.tokens_arrived == res.tokens_processed + res.tokens_left,
        "token_throughput": res.tokens_processed / span if span > 0 else 0.0,
        "output_throughput": out_tokens / span if span > 0 else 0.0,
        "request_throughput": completed / span if span > 0 else 0.0,
        "busy_fraction": busy / span if span > 0 else 0.0,
        "mean_batch_tokens": float((it["prefill_tokens"] + it["decode_tokens"]).mean()) if len(it) else 0.0,
        "max_backlog_tokens": int(it["backlog_tokens"].max()) if len(it) else 0,
        "final_backlog_tokens": res.tokens_left,
        "max_num_in_system": int(it["num_in_system"].max()) if len(it) else 0,
    }
    lat = request_latencies(req)
    for name in ("ttft", "tpot", "e2el"):
        s.update(latency_stats(name, lat[name]))
    s.update(latency_stats("itl", res.itl))
    return s
