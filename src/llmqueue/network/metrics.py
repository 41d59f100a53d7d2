"""Summary metrics of a network run: per class, per engine, per label (visit), and the backlog trend.

Latencies use the single-engine names (:func:`llmqueue.sim.metrics.latency_stats`, in ms):
a job's end-to-end latency ``e2el`` runs from its arrival to the completion of its last visit;
a visit's ``ttft`` and ``e2el`` run from its arrival at the engine. The backlog trend is the
least-squares slope (tokens/s) of the total sampled backlog over the second half of the run:
about 0 when the network is stable, the fluid growth rate when it is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..sim.metrics import latency_stats, request_latencies
from .model import Network
from .traffic import rho

if TYPE_CHECKING:
    import pandas as pd


class NetworkRecords(Protocol):
    """What the metrics read of a run (a :class:`~llmqueue.network.result.NetworkResult`): named
    structurally, so that the metrics do not import the result type that calls them."""

    @property
    def network(self) -> Network: ...
    @property
    def seed(self) -> int: ...
    @property
    def jobs(self) -> pd.DataFrame: ...
    @property
    def visits(self) -> pd.DataFrame: ...
    @property
    def iterations(self) -> dict[str, pd.DataFrame]: ...
    @property
    def backlog(self) -> pd.DataFrame: ...
    @property
    def end_time(self) -> float: ...
    @property
    def stopped_early(self) -> bool: ...
    @property
    def tokens(self) -> dict[str, dict[str, int]]: ...


def backlog_slope(res: NetworkRecords, start_fraction: float = 0.5, column: str = "total_tokens") -> float:
    """Slope (tokens/s) of a sampled backlog column over the last ``1 - start_fraction`` of the run."""
    b = res.backlog
    part = b[b["time"] >= start_fraction * res.end_time]
    if len(part) < 3:
        return 0.0
    return float(np.polyfit(part["time"], part[column], 1)[0])


def summarize_network(res: NetworkRecords) -> dict:
    net, span = res.network, res.end_time
    jobs, visits = res.jobs, res.visits
    done = jobs[jobs["completion_time"].notna()]
    theory = rho(net)
    s: dict = {
        "duration_s": span,
        "seed": res.seed,
        "stopped_early": res.stopped_early,
        "jobs_arrived": int(len(jobs)),
        "jobs_completed": int(len(done)),
        "jobs_in_system_at_end": int(len(jobs) - len(done)),
        "max_backlog_tokens": int(res.backlog["total_tokens"].max()),
        "final_backlog_tokens": int(sum(t["left"] for t in res.tokens.values())),
        "backlog_slope_tokens_per_s": backlog_slope(res),
        "tokens_conserved": all(t["arrived"] + t.get("recomputed", 0) == t["processed"] + t.get("cached", 0) + t["left"]
                                for t in res.tokens.values()),
    }
    s.update(latency_stats("e2el", (done["completion_time"] - done["arrival_time"]).to_numpy()))
    classes = {}
    for c in net.classes:
        cj = jobs[jobs["job_class"] == c.name]
        cd = cj[cj["completion_time"].notna()]
        row: dict[str, Any] = {"arrival_rate": c.rate, "jobs": int(len(cj)), "completed": int(len(cd)),
               "throughput_jobs_per_s": len(cd) / span if span > 0 else 0.0,
               "mean_visits": float(cd["visits"].mean()) if len(cd) else None}
        row.update(latency_stats("e2el", (cd["completion_time"] - cd["arrival_time"]).to_numpy()))
        classes[c.name] = row
    s["classes"] = classes
    engines = {}
    for e in net.engines:
        it = res.iterations[e.name]
        tok = res.tokens[e.name]
        cap = e.capacity
        busy = float((it["end_time"] - it["start_time"]).sum()) if len(it) else 0.0
        engines[e.name] = {
            "policy": e.policy.describe(), "batch_time": e.batch_time.describe(),
            "capacity_tokens_per_s": cap, "rho": theory[e.name],
            "token_throughput": tok["processed"] / span if span > 0 else 0.0,
            "utilization": tok["processed"] / (cap * span) if span > 0 else 0.0,
            "busy_fraction": busy / span if span > 0 else 0.0,
            "num_iterations": int(len(it)),
            "mean_batch_tokens": float((it["prefill_tokens"] + it["decode_tokens"]).mean()) if len(it) else 0.0,
            "max_backlog_tokens": int(res.backlog[e.name].max()),
            "final_backlog_tokens": tok["left"],
        }
        if "recomputed" in tok:      # an engine with KV memory
            engines[e.name].update(preemptions=tok["preemptions"], tokens_recomputed=tok["recomputed"],
                                   prefix_cache_hit_tokens=tok["cached"])
    s["engines"] = engines
    per_label = {}
    for label, v in visits.groupby("label", sort=False):
        lat = request_latencies(v)
        row = {"engines": sorted(v["engine"].unique().tolist()), "visits": int(len(v)),
               "completed": int(v["completion_time"].notna().sum()),
               "mean_tokens": float((v["prompt_tokens"] + v["decode_tokens"]).mean())}
        row.update(latency_stats("ttft", lat["ttft"]))
        row.update(latency_stats("e2el", lat["e2el"]))
        per_label[label] = row
    s["labels"] = per_label
    return s


def stability_verdict(res: NetworkRecords, tolerance: float = 0.005) -> str:
    """``diverges`` if the run was stopped for its backlog, or the total backlog grew over the second
    half faster than ``tolerance`` times the network's total capacity; else ``bounded``."""
    if res.stopped_early:
        return "diverges"
    cap = sum(e.capacity for e in res.network.engines)
    return "diverges" if backlog_slope(res) > tolerance * cap else "bounded"
