"""Summary metrics of a network run: per class, per engine, per label (visit), and the backlog trend
(computed by :mod:`.result`, typed by :class:`~llmqueue.sim.summary.NetworkSummary`), and the
stability verdict.

Latencies use the single-engine names (:func:`llmqueue.sim.metrics.latency_stats`, in ms):
a job's end-to-end latency ``e2el`` runs from its arrival to the completion of its last visit;
a visit's ``ttft`` and ``e2el`` run from its arrival at the engine. The backlog trend is the
least-squares slope (tokens/s) of the total sampled backlog over the second half of the arrival
phase (up to the last job arrival; the drain after it is left out):
about 0 when the network is stable, the fluid growth rate when it is not.
"""

from __future__ import annotations

from .result import NetworkResult, backlog_slope, summarize_network

__all__ = ["backlog_slope", "stability_verdict", "summarize_network"]


def stability_verdict(res: NetworkResult, tolerance: float = 0.005) -> str:
    """``diverges`` if the run was stopped for its backlog, or the total backlog grew over the second
    half faster than ``tolerance`` times the network's total capacity; else ``bounded``."""
    if res.stopped_early:
        return "diverges"
    cap = sum(e.capacity for e in res.network.engines)
    return "diverges" if backlog_slope(res) > tolerance * cap else "bounded"
