"""The one run path of a single-engine scenario: a scenario in, a result out.

``llmqueue simulate``, ``llmqueue sweep``, ``llmqueue serve-bench --engine sim`` and the
experiments all call :func:`simulate_scenario`, so every scenario field (KV memory, batch
composition, horizon) is honoured the same way everywhere: the engine core runs what the fast
path cannot (memory, other policies, composition-dependent batch times), and a run written to a
folder streams its records from the fast path when it applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ScenarioError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .engine.request import Request


def simulate_scenario(sc: Any, requests: Iterable[Request] | None = None, *, seed: int | None = None,
                      horizon: float | None = None, record_composition: bool | None = None,
                      out: Path | None = None, format: str = "parquet") -> Any:
    """Simulate a single-engine scenario ``sc`` (a :class:`~llmqueue.config.Scenario`).

    ``requests`` replaces the scenario's workload (else it is drawn with ``seed``, default the
    scenario's); ``horizon`` and ``record_composition`` override the scenario's ``simulation``
    block when given. A session workload (``workload.sessions``) runs as a closed-loop source on
    the engine core (never the fast path). With ``out``, a run the fast path can stream (no memory, a fast-path policy,
    no composition) writes its tables there as it goes and returns a
    :class:`~llmqueue.sim.fast.StreamedResult`; otherwise the result is an in-memory
    :class:`~llmqueue.sim.simulate.SimResult` for :func:`~llmqueue.sim.output.write_run`.
    """
    from .config import check_runnable
    from .sim.simulate import simulate
    from .sim.stream import run_to_disk, streams

    run = sc.single_engine()
    if run is None:
        raise ScenarioError(f"{sc.name or 'scenario'}: a network scenario has no single engine to simulate; "
                            f"run it with llmqueue.network.simulate_network (`llmqueue simulate` does)")
    from .workload.sessions import SessionWorkload
    horizon = run.horizon_s if horizon is None else horizon
    composition = run.record_composition if record_composition is None else record_composition
    if requests is None and isinstance(run.workload, SessionWorkload):   # a closed loop: turns follow completions
        check_runnable(sc, run.workload)
        return simulate(run.policy, run.batch_time, run.workload.source(run.seed if seed is None else seed),
                        memory=run.memory, horizon=horizon, record_composition=composition)
    if requests is None:
        check_runnable(sc, run.workload)
        requests = run.workload.requests(run.seed if seed is None else seed)
    if out is not None and streams(run.policy, run.batch_time, record_composition=composition, memory=run.memory):
        return run_to_disk(run.policy, run.batch_time, requests, out, horizon=horizon, format=format)
    return simulate(run.policy, run.batch_time, requests, memory=run.memory, horizon=horizon,
                    record_composition=composition)
