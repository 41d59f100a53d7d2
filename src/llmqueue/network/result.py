"""What a network run produced: per-job, per-visit, per-engine tables and backlog samples.

Times are in seconds (NaN where an event has not happened). Tables:

- ``jobs``: job_id, job_class, arrival_time, completion_time, visits (jobs still in the
  network at the end have completion NaN);
- ``visits``: one row per LLM call: request_id, job_id, job_class, step, label, engine and the
  engine's per-request times (arrival at the engine, prefill end, first token, completion);
- ``iterations``: per engine, the single-engine iteration table;
- ``backlog``: sampled every interval: time, jobs_in_system, total_tokens and one column of
  unprocessed tokens per engine; ``in_engine``: requests per engine; ``buffers``: unprocessed
  tokens per label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..sim.engine import IterationLog, RequestLog
from ..sim.metrics import request_latencies
from ..sim.summary import ClassRow, EngineRow, LabelRow, LatencyStats, NetworkSummary
from .model import Network
from .traffic import rho


@dataclass
class NetworkResult:
    network: Network
    seed: int
    jobs: pd.DataFrame
    visits: pd.DataFrame
    iterations: dict[str, pd.DataFrame]
    backlog: pd.DataFrame
    in_engine: pd.DataFrame
    buffers: pd.DataFrame
    end_time: float
    stopped_early: bool
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)   # engine -> arrived/processed/left
    # (and recomputed/cached/preemptions for an engine with KV memory)

    def summary(self) -> NetworkSummary:
        return summarize_network(self)

    def engine_requests(self, engine: str) -> pd.DataFrame:
        """The visits served by one engine, in the single-engine request-table layout."""
        v = self.visits[self.visits["engine"] == engine]
        return v[list(RequestLog.COLUMNS)].reset_index(drop=True)


def _iteration_frame(log: IterationLog, end: float) -> pd.DataFrame:
    cols = {c: np.frombuffer(v, dtype=np.float64 if v.typecode == "d" else np.int64).copy()
            if len(v) else np.array([], dtype=np.float64 if v.typecode == "d" else np.int64)
            for c, v in log.columns.items()}
    df = pd.DataFrame(cols)
    # an iteration still running when the run stopped has not ended
    return df[df["end_time"] <= end].reset_index(drop=True) if len(df) else df


def build_result(net: Network, seed: int, engines, request_logs, iteration_logs, visit_rows, job_rows,
                 samples, end: float, stopped_early: bool, unfinished_jobs=()) -> NetworkResult:
    """Assemble the tables of a run (see the module docstring)."""
    names = [e.name for e in net.engines]
    cls_names = [c.name for c in net.classes]
    step_names = [[s.name for s in c.workflow.steps] for c in net.classes]
    labels = [[s.label for s in c.workflow.steps] for c in net.classes]
    meta = pd.DataFrame(visit_rows, columns=["request_id", "job_id", "ci", "si", "ei"])
    reqs = pd.concat([pd.DataFrame(rl.rows, columns=list(RequestLog.COLUMNS)) for rl in request_logs],
                     ignore_index=True)
    visits = meta.merge(reqs, on="request_id", how="left").sort_values("request_id", kind="stable")
    visits.insert(2, "job_class", [cls_names[c] for c in visits["ci"]])
    visits.insert(3, "step", [step_names[c][s] for c, s in zip(visits["ci"], visits["si"])])
    visits.insert(4, "label", [labels[c][s] for c, s in zip(visits["ci"], visits["si"])])
    visits.insert(5, "engine", [names[e] for e in visits["ei"]])
    visits = visits.drop(columns=["ci", "si", "ei"]).reset_index(drop=True)
    rows = list(job_rows) + list(unfinished_jobs)
    jobs = pd.DataFrame(rows, columns=["job_id", "ci", "arrival_time", "completion_time", "visits"])
    jobs.insert(1, "job_class", [cls_names[c] for c in jobs["ci"]])
    jobs = jobs.drop(columns=["ci"]).sort_values("job_id", kind="stable").reset_index(drop=True)
    times = [s[0] for s in samples]
    backlog = pd.DataFrame({"time": times, "jobs_in_system": [s[1] for s in samples],
                            "total_tokens": [sum(s[2]) for s in samples],
                            **{n: [s[2][i] for s in samples] for i, n in enumerate(names)}})
    in_engine = pd.DataFrame({"time": times, **{n: [s[3][i] for s in samples] for i, n in enumerate(names)}})
    all_labels = [lab for ls in labels for lab in ls]
    buffers = pd.DataFrame({"time": times, **{lab: [s[4].get(lab, 0) for s in samples] for lab in all_labels}})
    iterations = {n: _iteration_frame(il, end) for n, il in zip(names, iteration_logs)}
    tokens = {n: {"arrived": e.tokens_arrived, "processed": e.tokens_processed, "left": e.backlog_tokens}
              for n, e in zip(names, engines)}
    for n, e in zip(names, engines):
        mem = e.core.mem
        if mem is not None:          # engines with KV memory: arrived + recomputed = processed + cached + left
            tokens[n].update(recomputed=mem.tokens_recomputed, cached=mem.tokens_cached,
                             preemptions=len(mem.preemptions))
    return NetworkResult(net, seed, jobs, visits, iterations, backlog, in_engine, buffers, end,
                         stopped_early, tokens)


def backlog_slope(res: NetworkResult, start_fraction: float = 0.5, column: str = "total_tokens") -> float:
    """Slope (tokens/s) of a sampled backlog column over the last ``1 - start_fraction`` of the
    arrival phase: from time 0 to the last job arrival (or the end of the run when arrivals outlast
    it). The drain after the last arrival says nothing about stability, so it is left out."""
    b = res.backlog
    arrivals = res.jobs["arrival_time"].to_numpy(dtype=float)
    end = min(res.end_time, float(arrivals.max())) if len(arrivals) and arrivals.max() > 0 else res.end_time
    part = b[(b["time"] >= start_fraction * end) & (b["time"] <= end)]
    if len(part) < 3:
        return 0.0
    return float(np.polyfit(part["time"], part[column], 1)[0])


def summarize_network(res: NetworkResult) -> NetworkSummary:
    net, span = res.network, res.end_time
    jobs, visits = res.jobs, res.visits
    done = jobs[jobs["completion_time"].notna()]
    theory = rho(net)
    s: dict[str, Any] = {
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
    s["e2el"] = LatencyStats.of((done["completion_time"] - done["arrival_time"]).to_numpy())
    classes = {}
    for c in net.classes:
        cj = jobs[jobs["job_class"] == c.name]
        cd = cj[cj["completion_time"].notna()]
        row: dict[str, Any] = {"arrival_rate": c.rate, "jobs": int(len(cj)), "completed": int(len(cd)),
               "throughput_jobs_per_s": len(cd) / span if span > 0 else 0.0,
               "mean_visits": float(cd["visits"].mean()) if len(cd) else None}
        classes[c.name] = ClassRow(**row, e2el=LatencyStats.of((cd["completion_time"] - cd["arrival_time"]).to_numpy()))
    s["classes"] = classes
    engines = {}
    for e in net.engines:
        it = res.iterations[e.name]
        tok = res.tokens[e.name]
        cap = e.capacity
        busy = float((it["end_time"] - it["start_time"]).sum()) if len(it) else 0.0
        engines[e.name] = row = {
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
            row.update(preemptions=tok["preemptions"], tokens_recomputed=tok["recomputed"],
                                   prefix_cache_hit_tokens=tok["cached"])
    s["engines"] = {k: EngineRow(**v) for k, v in engines.items()}
    per_label = {}
    for label, v in visits.groupby("label", sort=False):
        lat = request_latencies(v)
        row = {"engines": sorted(v["engine"].unique().tolist()), "visits": int(len(v)),
               "completed": int(v["completion_time"].notna().sum()),
               "mean_tokens": float((v["prompt_tokens"] + v["decode_tokens"]).mean())}
        per_label[label] = LabelRow(**row, ttft=LatencyStats.of(lat["ttft"]), e2el=LatencyStats.of(lat["e2el"]))
    s["labels"] = per_label
    return NetworkSummary(**s)
