"""Networks of LLM engines (spec section 5): workflows over several engines, routers, their
capacity (traffic equations, rho_k, the scaling LP), a fluid model, and max-pressure scheduling."""

from .lengths import Poisson
from .model import ROUTER_RULES, JobClass, NetEngine, Network, Router, replicas
from .pressure import MaxPressure
from .result import NetworkResult
from .simulator import simulate_network
from .workflow import Parallel, Step, Workflow

__all__ = [
    "Poisson", "ROUTER_RULES", "JobClass", "NetEngine", "Network", "Router", "replicas", "MaxPressure",
    "NetworkResult", "simulate_network", "Parallel", "Step", "Workflow",
]
