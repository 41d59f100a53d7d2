"""Options shared by several commands (vLLM's flag names where the meaning matches), and the
scenario overrides they make.

Flags follow vLLM's names where the meaning matches (--request-rate, --burstiness,
--max-num-batched-tokens, --max-num-seqs, --num-prompts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..policies import policy_names

SCENARIO_HELP = "Scenario YAML file, or a built-in name (see `llmqueue scenarios`). Default: fig1."

policy = typer.Option(None, "--policy", help=f"Scheduling policy: {' | '.join(policy_names())}.")
token_budget = typer.Option(None, "--token-budget", "--max-num-batched-tokens", help="Token budget b_max per batch.")
max_batch_size = typer.Option(None, "--max-batch-size", "--max-num-seqs",
                              help="Batch-size limit k_max (requests per batch).")
request_rate = typer.Option(None, "--request-rate", help="Arrival rate in requests/s.")
burstiness = typer.Option(None, "--burstiness", help="Gamma arrivals with this shape (1 = Poisson).")
num_requests = typer.Option(None, "--num-requests", "--num-prompts", help="Number of generated requests.")
duration = typer.Option(None, "--duration", help="Generate arrivals for this many seconds.")
seed = typer.Option(None, "--seed", help="Seed of the run's random streams.")
trace = typer.Option(None, "--trace", help="Replay a trace (our CSV, the Azure CSV or Mooncake JSON lines) instead.")
trace_format = typer.Option(None, "--trace-format", help="Format of --trace: auto (default), csv or mooncake.")


force = typer.Option(False, "--force", help="Replace the contents of a non-empty --out (an earlier run's files "
                    "are removed first); without it such a folder is refused.")


def unfinished(out: Path | None) -> str:
    """What an interrupted run that writes ``out`` kept (for :func:`~llmqueue.cli.signals.interruptible`)."""
    if out is None:
        return "nothing was written"
    return (f"{out} has no manifest.json, so it is not a finished run (report and compare refuse it); "
            f"run the command again with --force")


def overrides(policy: str | None = None, token_budget: int | None = None, max_batch_size: int | None = None,
              request_rate: float | None = None, burstiness: float | None = None,
              num_requests: int | None = None, duration: float | None = None, seed: int | None = None,
              trace: Path | None = None, trace_format: str | None = None) -> dict[str, Any]:
    """Dotted scenario overrides for the flags given (``None`` leaves the scenario's value)."""
    from ..config import UNSET
    o: dict[str, Any] = {"engine.policy": policy, "engine.token_budget": token_budget,
                         "engine.max_batch_size": max_batch_size, "workload.num_requests": num_requests,
                         "workload.duration_s": duration, "seed": seed}
    # the length flag given decides how long arrivals last: the scenario's other limit would cap it silently
    if duration is not None and num_requests is None:
        o["workload.num_requests"] = UNSET
    if num_requests is not None and duration is None:
        o["workload.duration_s"] = UNSET
    if request_rate is not None:
        o["workload.arrival.rate"] = request_rate
    if burstiness is not None:
        o["workload.arrival.process"] = "gamma"
        o["workload.arrival.burstiness"] = burstiness
    if trace_format is not None:
        o["workload.trace_format"] = trace_format
    if trace is not None:
        # replay replaces the generated stream (initial requests stay)
        o["workload.trace"] = str(Path(trace).resolve())
        for key in ("arrival", "prompt_tokens", "decode_tokens"):
            o[f"workload.{key}"] = UNSET
        for key, flag in (("num_requests", num_requests), ("duration_s", duration)):
            if flag is None:
                o[f"workload.{key}"] = UNSET
    return o


def refuse_flags(given: dict[str, Any], why: str) -> None:
    """Fail when any of these flags was given a value: the scenario kind they were used with has no use for them."""
    from .output import fail
    named = [flag for flag, value in given.items() if value not in (None, False, 0)]
    if named:
        fail(f"{', '.join(named)}: {why}")
