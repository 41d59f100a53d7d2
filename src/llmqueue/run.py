"""The one run path of a single-engine scenario: a scenario in, a result out.

``llmqueue simulate``, ``llmqueue sweep``, ``llmqueue serve-bench --engine sim`` and the
experiments all call :func:`simulate_scenario`, so every scenario field (KV memory, batch
composition, horizon) is honoured the same way everywhere: the engine core runs what the fast
path cannot (memory, other policies, composition-dependent batch times), and a run written to a
folder streams its records from the fast path when it applies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ScenarioError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .engine.request import Request


def simulate_scenario(sc: Any, requests: Iterable[Request] | None = None, *, seed: int | None = None,
                      horizon: float | None = None, record_composition: bool | None = None,
                      out: Path | None = None, format: str = "parquet", stop: Any = None,
                      stream_above: float | None = None, scratch: Path | None = None,
                      progress: Callable[[int, int], None] | None = None) -> Any:
    """Simulate a single-engine scenario ``sc`` (a :class:`~llmqueue.config.Scenario`).

    ``requests`` replaces the scenario's workload (else it is drawn with ``seed``, default the
    scenario's); ``horizon`` and ``record_composition`` override the scenario's ``simulation``
    block when given. A session workload (``workload.sessions``) runs as a closed-loop source on
    the engine core (never the fast path). With ``out``, a run the fast path can stream (no memory, a fast-path policy,
    no composition) writes its tables there as it goes and returns a
    :class:`~llmqueue.sim.fast.StreamedResult`; otherwise the result is an in-memory
    :class:`~llmqueue.sim.simulate.SimResult` for :func:`~llmqueue.sim.output.write_run`.

    Before it starts, the run's memory is estimated (:mod:`~llmqueue.sim.footprint`): a run whose
    in-memory records would take more than ``stream_above`` bytes (default: half the free memory)
    is streamed without a folder (a :class:`~llmqueue.sim.fast.StreamedResult`, same summary), or
    into ``scratch`` when given (a temporary folder of the caller's, so that its tables can be read back),
    and one whose in-system state cannot fit is refused (:class:`~llmqueue.sim.footprint.RunTooLarge`).
    ``stop`` (a :class:`~llmqueue.sim.diverging.DivergenceRule`) ends a runaway run early.
    ``progress(done, total)`` hears simulated seconds done out of the run's expected span (the
    horizon, else the workload's :func:`expected_span`), for a progress bar.
    """
    from .config import check_runnable
    from .sim.footprint import plan_run
    from .sim.simulate import simulate
    from .sim.stream import run_to_disk, streams

    run = sc.single_engine()
    if run is None:
        raise ScenarioError(f"{sc.name or 'scenario'}: a network scenario has no single engine to simulate; "
                            f"run it with llmqueue.network.simulate_network (`llmqueue simulate` does)")
    from .workload.sessions import SessionWorkload
    horizon = run.horizon_s if horizon is None else horizon
    composition = run.record_composition if record_composition is None else record_composition
    tick = None
    if progress is not None:
        span = horizon if horizon is not None else expected_span(run.workload)
        report = progress

        def tick(now: float) -> None:
            report(int(now), int(max(span, now)))
    if requests is None and isinstance(run.workload, SessionWorkload):   # a closed loop: turns follow completions
        check_runnable(sc, run.workload)
        return simulate(run.policy, run.batch_time, run.workload.source(run.seed if seed is None else seed),
                        memory=run.memory, horizon=horizon, record_composition=composition, stop=stop,
                        progress=tick)
    can_stream = streams(run.policy, run.batch_time, record_composition=composition, memory=run.memory)
    stream = False
    if requests is None:
        check_runnable(sc, run.workload)
        stream = plan_run(_footprint(run, horizon, stop), can_stream=can_stream, stream_above=stream_above,
                          what=f"simulating {sc.name or 'this scenario'}")
        requests = run.workload.requests(run.seed if seed is None else seed)
    if can_stream and (out is not None or stream):
        return run_to_disk(run.policy, run.batch_time, requests, scratch if out is None else out, horizon=horizon,
                           format=format, stop=stop, progress=tick)
    return simulate(run.policy, run.batch_time, requests, memory=run.memory, horizon=horizon,
                    record_composition=composition, stop=stop, progress=tick)


def expected_span(workload: Any) -> float:
    """Seconds the arrivals are expected to last: the duration, or the count over the rate when
    that ends sooner (0 when neither is known, e.g. a replayed trace)."""
    import math
    span = float(getattr(workload, "duration_s", None) or 0.0)
    n = getattr(workload, "num_requests", None) or getattr(workload, "num_sessions", None)
    rate = getattr(workload, "arrival_rate", 0.0)
    if n and isinstance(rate, (int, float)) and 0 < rate < math.inf:
        span = n / rate if span == 0 else min(span, n / rate)
    return span


def _footprint(run: Any, horizon: float | None, stop: Any) -> Any:
    """The run's estimated memory; its in-system state bounded by the stop rule's threshold."""
    import math
    from dataclasses import replace

    from .analysis import peak_token_rate
    from .sim.footprint import STATE_BYTES_PER_REQUEST, estimate

    w = run.workload
    tokens = w.mean_prompt_tokens + w.mean_decode_tokens
    rho = None
    if tokens > 0 and 0 < w.arrival_rate < math.inf:   # Theorem 2's load (no scan over loads)
        rho = w.arrival_rate * tokens / peak_token_rate(run.batch_time, run.policy.token_budget,
                                                        w.mean_prompt_tokens, w.mean_decode_tokens)
    fp = estimate(w, run.policy.token_budget, rho, horizon)
    if stop is not None and tokens > 0:   # a diverging run stops near the threshold (x 2: the check lags)
        bound = 2 * stop.min_backlog_tokens / tokens * STATE_BYTES_PER_REQUEST
        fp = replace(fp, state_bytes=min(fp.state_bytes, bound))
    return fp
