"""Networks of LLM engines (spec section 5): workflows over several engines, routers, their
capacity (traffic equations, rho_k, the scaling LP), a fluid model, and max-pressure scheduling.

The names below are imported from their modules on first use, so that reading a scenario file
(``network.scenario``) does not import the simulator and its dependencies.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lengths import Poisson
    from .model import ROUTER_RULES, JobClass, NetEngine, Network, Router, replicas
    from .pressure import MaxPressure
    from .result import NetworkResult
    from .simulator import simulate_network
    from .workflow import Parallel, Step, Workflow

#: public name -> the module that defines it
_LAZY = {"Poisson": "lengths", "ROUTER_RULES": "model", "JobClass": "model", "NetEngine": "model",
         "Network": "model", "Router": "model", "replicas": "model", "MaxPressure": "pressure",
         "NetworkResult": "result", "simulate_network": "simulator", "Parallel": "workflow", "Step": "workflow",
         "Workflow": "workflow"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Poisson", "ROUTER_RULES", "JobClass", "NetEngine", "Network", "Router", "replicas", "MaxPressure",
    "NetworkResult", "simulate_network", "Parallel", "Step", "Workflow",
]
