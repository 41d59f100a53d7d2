"""Exact sample paths of a run: unprocessed tokens and requests in the system at any time.

The iteration log records the backlog at iteration starts only, so it misses the drop at the
end of the last batch before an idle period. Here the backlog is rebuilt exactly from the two
tables every simulator returns: B(t) = tokens arrived by t - tokens processed by t, where an
arrival counts at its arrival time and a batch's tokens count at its end time. The number in
system is N(t) = arrivals by t - completions by t. Both are right-continuous step functions.

With a KV memory, a preemption by recomputation puts the request's computed tokens back into
the backlog at the preemption time (they will be processed again), and prompt tokens served by
the prefix cache never are: so "served" counts useful work only, and the backlog is the work
still to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RunPath:
    """Cumulative arrivals, service and completions of one run, evaluable at any time."""

    arrival_times: np.ndarray       # sorted
    arrival_tokens: np.ndarray      # cumulative tokens arrived, aligned with arrival_times
    end_times: np.ndarray           # iteration end times, sorted
    served_tokens: np.ndarray       # cumulative tokens processed, aligned with end_times
    completion_times: np.ndarray    # sorted, finite only
    horizon: float
    #: arrivals are known to continue until this time (the run was cut at its horizon while the
    #: workload still had requests to come); 0: the arrival phase ends at the last arrival
    arrivals_until: float = 0.0

    @classmethod
    def from_result(cls, res, horizon: float | None = None, arrivals_until: float | None = None) -> RunPath:
        """Build from a :class:`~llmqueue.sim.SimResult` (requests and iterations tables; with
        memory, its preemptions table too), or from a streamed result's tables on disk.

        ``horizon``: the run's window (default its end time); given, it also says that arrivals
        lasted until it (a run cut at its horizon, as the lab's runs whose stream lasts exactly
        the horizon), unless ``arrivals_until`` says otherwise."""
        h = float(res.end_time if horizon is None else horizon)
        until = float(arrivals_until if arrivals_until is not None else (0.0 if horizon is None else h))
        if not hasattr(res, "requests"):     # a StreamedResult: its tables are files
            return cls.from_tables(res.read_requests(), res.read_iterations(), h, arrivals_until=until)
        return cls.from_tables(res.requests, res.iterations, h, getattr(res, "preemptions", None), until)

    @classmethod
    def from_folder(cls, folder, horizon: float, arrivals_until: float = 0.0) -> RunPath:
        """Build from a run folder (``simulate --out``): its requests, iterations and, when the
        run had memory, preemptions tables."""
        from ..sim.tables import read_run_table, run_table_exists
        pre = read_run_table(folder, "preemptions") if run_table_exists(folder, "preemptions") else None
        return cls.from_tables(read_run_table(folder, "requests"), read_run_table(folder, "iterations"),
                               horizon, pre, arrivals_until)

    @classmethod
    def from_tables(cls, req, it, horizon: float, preemptions=None, arrivals_until: float = 0.0) -> RunPath:
        """Build from the requests and iterations tables (as in requests.csv and iterations.csv),
        and the preemptions table (preemptions.csv) of a run with memory."""
        arr = req["arrival_time"].to_numpy(dtype=float)
        tok = (req["prompt_tokens"].to_numpy(dtype=np.int64) + req["decode_tokens"].to_numpy(dtype=np.int64))
        if "prefix_cache_hit_tokens" in req:
            tok = tok - req["prefix_cache_hit_tokens"].to_numpy(dtype=np.int64)
        order = np.argsort(arr, kind="stable")
        ends = it["end_time"].to_numpy(dtype=float)
        served = (it["prefill_tokens"].to_numpy(dtype=np.int64) + it["decode_tokens"].to_numpy(dtype=np.int64))
        if preemptions is not None and len(preemptions):
            lost = preemptions[preemptions["mode"] == "recompute"]
            ends = np.concatenate((ends, lost["time"].to_numpy(dtype=float)))
            served = np.concatenate((served, -lost["kv_tokens"].to_numpy(dtype=np.int64)))
        eorder = np.argsort(ends, kind="stable")
        comp = req["completion_time"].to_numpy(dtype=float)
        comp = np.sort(comp[np.isfinite(comp)])
        return cls(arrival_times=arr[order], arrival_tokens=np.cumsum(tok[order]),
                   end_times=ends[eorder], served_tokens=np.cumsum(served[eorder]),
                   completion_times=comp, horizon=float(horizon), arrivals_until=float(arrivals_until))

    @staticmethod
    def _cum(times: np.ndarray, cum: np.ndarray, t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(times, t, side="right")
        padded = np.concatenate(([0], cum))
        return padded[i]

    def arrived(self, t) -> np.ndarray:
        """Tokens arrived by time t (inclusive)."""
        return self._cum(self.arrival_times, self.arrival_tokens, np.asarray(t, dtype=float))

    def served(self, t) -> np.ndarray:
        """Tokens processed by batches that ended by time t (inclusive)."""
        return self._cum(self.end_times, self.served_tokens, np.asarray(t, dtype=float))

    def backlog(self, t) -> np.ndarray:
        """Unprocessed tokens in the system at time t."""
        return self.arrived(t) - self.served(t)

    def in_system(self, t) -> np.ndarray:
        """Requests arrived and not completed at time t."""
        t = np.asarray(t, dtype=float)
        return (np.searchsorted(self.arrival_times, t, side="right")
                - np.searchsorted(self.completion_times, t, side="right"))

    def grid(self, n: int = 2000, end: float | None = None) -> np.ndarray:
        """n + 1 equally spaced times from 0 to ``end`` (default the horizon)."""
        return np.linspace(0.0, self.horizon if end is None else end, n + 1)

    @property
    def arrival_end(self) -> float:
        """The end of the arrival phase: the last arrival, or the horizon when arrivals outlast it
        (``arrivals_until``).

        The drain after the last arrival says nothing about stability (every backlog drains once
        arrivals stop), so the growth estimate and the verdict look at ``[0, arrival_end]`` only.
        A run whose requests all arrive at time 0 has no arrival phase: the whole run is used.
        """
        last = max(float(self.arrival_times[-1]) if len(self.arrival_times) else 0.0, self.arrivals_until)
        return min(self.horizon, last) if last > 0 else self.horizon
