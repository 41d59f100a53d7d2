"""``simulate_with_memory``: one engine with a KV-cache memory, same tables as ``simulate``.

The result is a :class:`MemoryResult`: a :class:`~llmqueue.sim.simulate.SimResult` (same
request and iteration columns) plus the preemptions table, the memory columns per iteration
and the recomputed-token count. Token conservation with recomputation reads
``tokens_arrived + tokens_recomputed == tokens_processed + tokens_cached + tokens_left``
(``tokens_cached``: prompt tokens served by the prefix cache, 0 without prefix caching). With
prefix caching the requests table gets a ``prefix_cache_hit_tokens`` column and memory.csv a
``kv_cached_tokens`` one (unreferenced cached blocks); without it the tables are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engine.batch_time import BatchTimeModel
from ..engine.request import Request
from ..policies.base import Policy
from ..sim.engine import IterationLog, RequestLog
from ..sim.kernel import Kernel
from ..sim.simulate import SimResult, _Feeder
from .config import MemoryConfig
from .engine import PREEMPTION_COLUMNS, MemorySimEngine


@dataclass
class MemoryResult(SimResult):
    """A run with memory: the SimResult tables plus what the memory did."""

    memory: MemoryConfig | None = None
    preemptions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PREEMPTION_COLUMNS)))
    memory_iterations: pd.DataFrame = field(default_factory=pd.DataFrame)
    tokens_recomputed: int = 0
    peak_kv_tokens: int = 0
    tokens_cached: int = 0
    prefix_queries: int = 0

    def summary(self) -> dict:
        s = super().summary()
        p = self.preemptions
        s["tokens_recomputed"] = self.tokens_recomputed
        s["tokens_conserved"] = (self.tokens_arrived + self.tokens_recomputed
                                 == self.tokens_processed + self.tokens_cached + self.tokens_left)
        s["kv_capacity_tokens"] = self.memory.num_blocks * self.memory.block_size if self.memory else None
        s["peak_kv_tokens"] = self.peak_kv_tokens
        s["mean_kv_tokens"] = (float(self.memory_iterations["kv_used_tokens"].mean())
                               if len(self.memory_iterations) else 0.0)
        s["preemptions"] = int(len(p))
        s["preemptions_recompute"] = int((p["mode"] == "recompute").sum()) if len(p) else 0
        s["preemptions_swap"] = int((p["mode"] == "swap").sum()) if len(p) else 0
        s["requests_preempted"] = int(p["request_id"].nunique()) if len(p) else 0
        s["swap_time_s"] = (float(self.memory_iterations["swap_time"].sum())
                            if len(self.memory_iterations) else 0.0)
        if self.memory is not None and self.memory.prefix_caching:
            s["tokens_cached"] = self.tokens_cached
            s["prefix_cache_hit_tokens"] = self.tokens_cached
            s["prefix_cache_queries"] = self.prefix_queries
            s["prefix_cache_hit_rate"] = self.tokens_cached / self.prefix_queries if self.prefix_queries else 0.0
        return s


def _frame(columns: dict) -> pd.DataFrame:
    return pd.DataFrame({c: np.frombuffer(v, dtype=np.float64 if v.typecode == "d" else np.int64).copy()
                         if len(v) else np.array([], dtype=np.float64 if v.typecode == "d" else np.int64)
                         for c, v in columns.items()})


def simulate_with_memory(policy: Policy, batch_time: BatchTimeModel, requests: Iterable[Request],
                         memory: MemoryConfig, *, horizon: float | None = None,
                         record_composition: bool = False, validate: bool = True) -> MemoryResult:
    """Run one engine with KV memory ``memory`` until all requests complete (or ``horizon`` s).

    With a memory large enough that nothing waits for it, the result equals
    ``llmqueue.sim.simulate(..., engine="generic")`` exactly (tested).
    """
    if horizon is not None and not horizon > 0:
        raise ValueError(f"horizon must be > 0 seconds, got {horizon}")
    if not isinstance(memory, MemoryConfig):
        raise TypeError(f"memory must be a MemoryConfig, got {type(memory).__name__}")
    kernel = Kernel()
    rlog, ilog = RequestLog(), IterationLog(keep_plans=record_composition)
    engine = MemorySimEngine(kernel, policy, batch_time, request_log=rlog, iteration_log=ilog,
                             validate=validate, memory=memory)
    labels: dict[int, str] = {}
    _Feeder(kernel, engine, iter(requests), labels)
    kernel.run(until=horizon)
    engine.flush_unfinished()
    req_df = pd.DataFrame(rlog.rows, columns=list(RequestLog.COLUMNS))
    req_df = req_df.sort_values("request_id", kind="stable").reset_index(drop=True)
    if memory.prefix_caching:
        req_df["prefix_cache_hit_tokens"] = req_df["request_id"].map(engine.prefix_hits).fillna(0).astype("int64")
    it_df, mem_df = _frame(ilog.columns), _frame(engine.mem_columns)
    plans = ilog.plans
    if horizon is not None and len(it_df) and it_df["end_time"].iloc[-1] > horizon:
        it_df, mem_df = it_df.iloc[:-1], mem_df.iloc[:-1]      # still running at the horizon
        if plans is not None:
            plans = plans[: len(it_df)]
    pre = pd.DataFrame(engine.preemptions, columns=list(PREEMPTION_COLUMNS))
    return MemoryResult(
        requests=req_df, iterations=it_df, itl=np.frombuffer(engine.itl, dtype=np.float64).copy(),
        end_time=kernel.now, tokens_arrived=engine.tokens_arrived,
        tokens_processed=engine.tokens_processed, tokens_left=engine.backlog_tokens,
        policy=policy, batch_time=batch_time, compositions=plans, labels=labels,
        memory=memory, preemptions=pre, memory_iterations=mem_df,
        tokens_recomputed=engine.tokens_recomputed,
        peak_kv_tokens=engine.peak_blocks * memory.block_size, tokens_cached=engine.tokens_cached,
        prefix_queries=engine.prefix_queries)


def write_memory_run(res: MemoryResult, out, extra: dict | None = None, format: str = "parquet") -> dict:
    """``write_run`` plus preemptions.csv and memory.csv (per-iteration memory) next to it."""
    from pathlib import Path

    from ..sim.output import write_run
    out = Path(out)
    summary = write_run(res, out, extra=extra, format=format)
    res.preemptions.to_csv(out / "preemptions.csv", index=False)
    res.memory_iterations.to_csv(out / "memory.csv", index=False)
    return summary
