"""The experiments registry: every ``llmqueue reproduce`` experiment, declared once.

Each experiment is a module of this package with ``run(out: Path, *, fast: bool = False,
progress=None) -> dict`` (it writes PNG figures and ``result.json`` into ``out`` and returns the result: its
``findings`` are sentences, its ``figures`` file names) and ``SIZES``, the parameters that
``--fast`` shrinks (``SIZES[fast]``). :data:`EXPERIMENTS` names them with their labels; a module
is imported only when its experiment runs (they pull in matplotlib, the network simulator, ...).
The command (``llmqueue reproduce``, in :mod:`llmqueue.cli.reproduce`) and ``--list``
derive from here.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType

from ..errors import ExperimentError


def _lazy(module: str) -> Callable[[], ModuleType]:
    """A loader of this package's ``module``: it is imported when the experiment runs."""
    return partial(importlib.import_module, f"{__name__}.{module}")


@dataclass(frozen=True)
class Experiment:
    """One experiment: its command-line name, what it shows (for ``--list``), its area, its module."""

    name: str
    label: str
    area: str                              # "paper", "network" or "memory"
    module: Callable[[], ModuleType]

    def run(self, out: Path, *, fast: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
        """Run into ``out``; ``fast``: the smaller ``SIZES[True]`` (a smoke test, not the result);
        ``progress(done, total)``: called as the experiment's runs finish (by a module whose ``run``
        takes it). The folder's manifest is removed first and written last: it is complete only
        when sealed."""
        from ..sim.manifest import seal, unseal
        out = Path(out)
        unseal(out)
        module = self.module()
        if progress is not None and "progress" in inspect.signature(module.run).parameters:
            result = module.run(out, fast=fast, progress=progress)
        else:
            result = module.run(out, fast=fast)
        seal(out, "reproduce", experiment=self.name, fast=fast)
        return result

    def sizes(self, fast: bool) -> dict:
        """The run-size parameters (horizons, points) the full run or ``--fast`` uses."""
        return dict(self.module().SIZES[fast])


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("fig8", "the batch sequences of the four policies on the paper's Fig. 8 example", "paper",
               _lazy("fig8")),
    Experiment("stability-contrast", "number in system of the four policies, Fig. 1 workload, 14 req/s and "
               "0.85 lambda*", "paper", _lazy("contrast")),
    Experiment("theorem2", "backlog at 0.9 / 1.1 lambda* and the growth rate against the fluid line", "paper",
               _lazy("theorem2")),
    Experiment("vertex-c", "the five configurations at vertex C and the k_max stability region", "paper",
               _lazy("vertex_c")),
    Experiment("token-budget", "throughput and TTFT/TBT percentiles against the token budget", "paper",
               _lazy("token_budget")),
    Experiment("rybko-stolyar", "a two-engine network: exit priority diverges below capacity, the reverse "
               "priority and max-pressure stay bounded (with the fluid model)", "network", _lazy("rybko_stolyar")),
    Experiment("fork-join", "fork-join and DAG workflows over four engines: the simulated boundary against the "
               "capacity LP, Sarathi-Serve against Orca", "network", _lazy("fork_join")),
    Experiment("memory-bound", "the maximum stable rate against the KV capacity: memory-bound to compute-bound, "
               "vLLM-v1 preemption against threshold admission", "memory", _lazy("memory_bound")),
    Experiment("pd-split", "prefill/decode disaggregation: the P:D ratio sweep against its LP, and colocated "
               "against disaggregated goodput under TTFT and TPOT SLOs", "network", _lazy("pd_split")),
    Experiment("kv-cache", "prefix-cache hit rate, prefill computed and TTFT against the cache size on Mooncake's "
               "conversation trace, with the unbounded-cache ceiling", "memory", _lazy("kv_cache")),
    Experiment("cache-routing", "cache-aware routing against JSQ over replicas with prefix caches: hit rate, "
               "TTFT and throughput on Mooncake's conversation trace", "network", _lazy("cache_routing")),
    Experiment("agent-retention", "agents whose LLM calls share context: prefix-cache hit rate and latency against "
               "the KV cache size under LRU, TTL and workflow-aware retention", "network", _lazy("agent_retention")),
)

_BY_NAME = {e.name: e for e in EXPERIMENTS}


def experiment_names() -> list[str]:
    return [e.name for e in EXPERIMENTS]


def experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name lists the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ExperimentError(f"unknown experiment {name!r}; choose one of {', '.join(experiment_names())}") from None


def run_experiment(name: str, out: Path, fast: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """Run experiment ``name`` into ``out`` (``fast``: the reduced size; ``progress(done, total)``
    as its runs finish)."""
    return experiment(name).run(Path(out), fast=fast, progress=progress)


__all__ = ["EXPERIMENTS", "Experiment", "experiment", "experiment_names", "run_experiment"]
