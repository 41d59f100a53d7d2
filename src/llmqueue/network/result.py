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

import numpy as np
import pandas as pd

from ..sim.engine import IterationLog, RequestLog
from .model import Network


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

    def summary(self) -> dict:
        from .metrics import summarize_network
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
