"""The result of a single-engine run with its tables in memory (:class:`SimResult`), and the
helpers that build its frames from an engine core's columns.

Token conservation reads ``tokens_arrived + tokens_recomputed == tokens_processed +
tokens_cached + tokens_left`` (``tokens_cached``: prompt tokens served by the prefix cache, 0
without prefix caching); the summary is :class:`~llmqueue.sim.summary.RunSummary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.logs import PREEMPTION_COLUMNS, RequestLog
from ..engine.plan import BatchPlan
from ..memory.config import MemoryConfig
from .summary import LatencyStats, MemoryStats, RunCounts, RunSummary, RunTotals

if TYPE_CHECKING:  # pandas is imported by the run that builds the tables, not by importing this
    import pandas as pd


@dataclass(kw_only=True)
class SimResult(RunTotals):
    """What one run produced, its tables in memory. Times in seconds; NaN where an event has not
    happened.

    The memory fields are set when memory was modelled (``memory`` is not None): the
    ``preemptions`` table (one row per preemption), ``memory_iterations`` (per-iteration KV
    columns, row for row with ``iterations``), recomputed tokens, the peak of the used KV, and
    the prefix cache's hit and query tokens.
    """

    requests: pd.DataFrame
    iterations: pd.DataFrame
    itl: np.ndarray
    compositions: list[BatchPlan] | None = None
    memory: MemoryConfig | None = None
    preemptions: pd.DataFrame | None = None
    memory_iterations: pd.DataFrame | None = None
    peak_kv_tokens: int = 0
    prefix_queries: int = 0
    sessions: pd.DataFrame | None = None
    hash_blocks: int = 0            # prompt hash blocks of requests with block hashes (first admissions)
    hash_block_hits: int = 0        # of them, the leading ones the prefix cache held whole

    def summary(self) -> RunSummary:
        """The run's summary; a session workload's run adds the per-session keys
        (:func:`session_stats`) to its ``extra``."""
        s = super().summary()
        return s if self.sessions is None else s.with_extra(session_stats(self.sessions))

    def counts(self) -> RunCounts:
        from .metrics import request_latencies
        req, it = self.requests, self.iterations
        done = req[req["completion_time"].notna()]
        lat = request_latencies(req)
        return RunCounts(
            num_requests=int(len(req)), completed=int(len(done)), output_tokens=int(done["decode_tokens"].sum()),
            num_iterations=int(len(it)),
            busy_s=float((it["end_time"] - it["start_time"]).sum()) if len(it) else 0.0,
            mean_batch_tokens=float((it["prefill_tokens"] + it["decode_tokens"]).mean()) if len(it) else 0.0,
            max_backlog_tokens=int(it["backlog_tokens"].max()) if len(it) else 0,
            max_num_in_system=int(it["num_in_system"].max()) if len(it) else 0,
            ttft=LatencyStats.of(lat["ttft"]), tpot=LatencyStats.of(lat["tpot"]),
            e2el=LatencyStats.of(lat["e2el"]), itl=LatencyStats.of(self.itl))

    def memory_stats(self) -> MemoryStats | None:
        """The KV memory's keys of the summary (None when memory was not modelled)."""
        p, m, mem = self.preemptions, self.memory_iterations, self.memory
        if mem is None:
            return None
        assert p is not None and m is not None, "a run with memory carries its preemptions and memory tables"
        prefix: dict[str, Any] = {}
        if mem.prefix_caching:
            prefix = dict(tokens_cached=self.tokens_cached, prefix_cache_hit_tokens=self.tokens_cached,
                          prefix_cache_queries=self.prefix_queries,
                          prefix_cache_hit_rate=(self.tokens_cached / self.prefix_queries
                                                 if self.prefix_queries else 0.0))
        return MemoryStats(
            tokens_recomputed=self.tokens_recomputed, kv_capacity_tokens=mem.num_blocks * mem.block_size,
            peak_kv_tokens=self.peak_kv_tokens,
            mean_kv_tokens=float(m["kv_used_tokens"].mean()) if len(m) else 0.0,
            preemptions=int(len(p)),
            preemptions_recompute=int((p["mode"] == "recompute").sum()) if len(p) else 0,
            preemptions_swap=int((p["mode"] == "swap").sum()) if len(p) else 0,
            requests_preempted=int(p["request_id"].nunique()) if len(p) else 0,
            swap_time_s=float(m["swap_time"].sum()) if len(m) else 0.0, **prefix)


def session_stats(sessions: pd.DataFrame) -> dict[str, Any]:
    """Per-session keys of a summary: sessions started and finished, turns, and the session
    time (first arrival to last completion) of finished sessions, in seconds."""
    done = sessions[sessions["completion_time"].notna()]
    st = LatencyStats.of(done["session_time"].to_numpy(dtype=float)).to_dict("session_time")
    return {"sessions": int(len(sessions)), "sessions_completed": int(len(done)),
            "mean_turns_per_session": float(sessions["turns"].mean()) if len(sessions) else 0.0,
            "turns_completed": int(sessions["turns_done"].sum()),
            **{k.replace("_ms", "_s"): (v / 1000.0 if isinstance(v, float) else v) for k, v in st.items()}}


def frame(columns: dict) -> pd.DataFrame:
    """A DataFrame of typed array columns ("d": float64, "q": int64), copied."""
    import pandas as pd

    return pd.DataFrame({c: np.frombuffer(v, dtype=np.float64 if v.typecode == "d" else np.int64).copy()
                         if len(v) else np.array([], dtype=np.float64 if v.typecode == "d" else np.int64)
                         for c, v in columns.items()})


def core_fields(core) -> dict:
    """The :class:`SimResult` fields every driver of an engine core reports the same way: the
    requests table (by request id), the iterations table, the inter-token gaps, the token counts
    and the memory fields (the simulated and the real engine differ only in clock and extras)."""
    import pandas as pd

    requests = pd.DataFrame(core.request_log.rows, columns=list(RequestLog.COLUMNS))
    requests = requests.sort_values("request_id", kind="stable").reset_index(drop=True)
    return dict(requests=requests, iterations=frame(core.iteration_log.columns),
                itl=np.frombuffer(core.itl, dtype=np.float64).copy(), tokens_arrived=core.tokens_arrived,
                tokens_processed=core.tokens_processed, tokens_left=core.backlog_tokens,
                **memory_fields(core, requests))


def memory_fields(core, requests: pd.DataFrame) -> dict:
    """The :class:`SimResult` memory fields of an engine core's run (none without memory); with
    prefix caching, adds the ``prefix_cache_hit_tokens`` column to ``requests`` (in place)."""
    import pandas as pd

    mem = core.mem
    if mem is None:
        return {}
    memory = core.memory
    if memory.prefix_caching:
        requests["prefix_cache_hit_tokens"] = requests["request_id"].map(mem.prefix_hits).fillna(0).astype("int64")
    return dict(memory=memory, preemptions=pd.DataFrame(mem.preemptions, columns=list(PREEMPTION_COLUMNS)),
                memory_iterations=frame(mem.columns), tokens_recomputed=mem.tokens_recomputed,
                peak_kv_tokens=mem.peak_blocks * memory.block_size, tokens_cached=mem.tokens_cached,
                prefix_queries=mem.prefix_queries, hash_blocks=mem.hash_blocks,
                hash_block_hits=mem.hash_block_hits)
