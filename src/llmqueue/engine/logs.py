"""What an engine records: per-request times, per-iteration columns, and the stall error.

Both tables are columns that are cheap to append and easy to turn into DataFrames; every driver
of the engine core (simulated or real) fills the same ones, so runs of both have the same files.
"""

from __future__ import annotations

from array import array
from typing import Any

from ..errors import EngineStalled
from .plan import BatchPlan
from .request import Request

#: Columns of the preemptions table (one row per preemption).
PREEMPTION_COLUMNS = ("time", "iteration", "request_id", "mode", "kv_tokens", "for_request_id")
#: Extra per-iteration columns an engine with KV memory records (``kv_cached_tokens`` too with
#: prefix caching).
MEMORY_ITERATION_COLUMNS = ("kv_used_tokens", "preemptions", "swap_tokens", "swap_time")


def stalled(name: str, policy_text: str, now: float, waiting: int, head_id: int,
            head_prefill_left: int) -> EngineStalled:
    """The error for an engine whose policy forms no batch while ``waiting`` requests wait
    (one message for the engine core, the fast core and every driver)."""
    return EngineStalled(
        f"{name}: {policy_text} forms no batch at t={now:.6g}s although {waiting} request(s) wait "
        f"(head request {head_id} has {head_prefill_left} prompt tokens left). A whole-prefill "
        f"policy cannot schedule a prompt larger than its token budget: raise token_budget or use "
        f"a chunking policy (orca, sarathi).")


class RequestLog:
    """Per-request times, as parallel columns (cheap to append, easy to turn into a DataFrame)."""

    COLUMNS = ("request_id", "arrival_time", "prompt_tokens", "decode_tokens", "prefill_end_time",
               "first_token_time", "completion_time")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, req: Request, prefill_end: float, first_token: float, completion: float) -> None:
        self.rows.append((req.request_id, req.arrival_time, req.prompt_tokens, req.decode_tokens,
                          prefill_end, first_token, completion))


class IterationLog:
    """Per-iteration columns, plus the batch plans when asked for."""

    COLUMNS = ("start_time", "end_time", "prefill_tokens", "decode_tokens", "num_requests",
               "backlog_tokens", "num_in_system")

    def __init__(self, keep_plans: bool = False) -> None:
        self.columns: dict[str, array[Any]] = {c: array("d" if c.endswith("time") else "q") for c in self.COLUMNS}
        self.plans: list[BatchPlan] | None = [] if keep_plans else None

    def add(self, start: float, end: float, plan: BatchPlan, backlog: int, in_system: int) -> None:
        c = self.columns
        c["start_time"].append(start)
        c["end_time"].append(end)
        c["prefill_tokens"].append(plan.prefill_tokens)
        c["decode_tokens"].append(len(plan.decode))
        c["num_requests"].append(plan.num_requests)
        c["backlog_tokens"].append(backlog)
        c["num_in_system"].append(in_system)
        if self.plans is not None:
            self.plans.append(plan)
