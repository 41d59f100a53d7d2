"""A trace over identical replicas behind one router: each request, at its arrival, goes to the
replica the router picks (:class:`~.routers.RouterState`), and each replica is the one engine
core on the event kernel (:class:`~llmqueue.sim.engine.SimEngine`), KV memory and prefix cache
included. This is what a workflow network with one step addressed to a router does, for a
replayed trace instead of generated visits (a trace's requests carry their own block hashes, so
a cache-aware router can match them against each replica's cache).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..engine.batch_time import BatchTimeModel
from ..engine.request import Request
from ..memory.config import MemoryConfig
from ..sim.engine import SimEngine
from ..sim.kernel import ARRIVAL, Kernel
from ..sim.result import SimResult, core_fields
from ..workload.workload import child_generators
from .routers import RouterState


@dataclass
class RoutedRun:
    """Per-replica results and which replica served each request."""

    replicas: list[SimResult]
    served_by: dict[int, int]
    end_time: float


def simulate_routed(policy, batch_time: BatchTimeModel, requests: Iterable[Request], *, replicas: int,
                    rule: str, memory: MemoryConfig | None = None, seed: int = 0,
                    load_weight: float = 1.0) -> RoutedRun:
    """Replay ``requests`` (sorted by arrival) over ``replicas`` copies of one engine behind a
    router with ``rule``; the router's random stream is the first child of ``seed``."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    kernel = Kernel()
    engines = [SimEngine(kernel, policy, batch_time, memory=memory, name=f"replica{i}") for i in range(replicas)]
    router = RouterState(rule, engines, child_generators(np.random.SeedSequence(seed), 1)[0],
                         load_weight=load_weight)
    index = {e: i for i, e in enumerate(engines)}
    served: dict[int, int] = {}
    it: Iterator[Request] = iter(requests)
    last = [0.0]

    def arrive(req: Request) -> None:
        e = router.choose(req)
        served[req.request_id] = index[e]
        e.submit(req)
        feed()

    def feed() -> None:
        req = next(it, None)
        if req is None:
            return
        if req.arrival_time < last[0]:
            raise ValueError(f"requests must be sorted by arrival time: request {req.request_id} "
                             f"arrives at {req.arrival_time} after one at {last[0]}")
        last[0] = req.arrival_time
        kernel.schedule(req.arrival_time, lambda: arrive(req), ARRIVAL)

    feed()
    kernel.run()
    results = []
    for e in engines:
        e.flush_unfinished()
        results.append(SimResult(end_time=kernel.now, policy=policy, batch_time=batch_time, **core_fields(e.core)))
    return RoutedRun(results, served, kernel.now)
