"""``llmqueue plan``: the cheapest configurations that serve a workload within latency SLOs.

See docs/plan.md. :mod:`.spec` (grid, SLOs, prices), :mod:`.goodput` (one configuration's
goodput by a bracketing search on the simulator, below the theory's capacity), :mod:`.run` (configurations on
the lab's backends, resumable), :mod:`.output` (table, Pareto front, plot, report section).
"""

from .goodput import build_engine, goodput, probe
from .run import PlanMismatch, PlanOutcome, pareto_front, plan_backend, run_plan
from .spec import DEFAULT_PRICES, GRID_KEYS, PlanSpec, parse_grid, parse_prices, parse_slo

__all__ = ["DEFAULT_PRICES", "GRID_KEYS", "PlanMismatch", "PlanOutcome", "PlanSpec", "build_engine", "goodput",
           "pareto_front", "parse_grid", "parse_prices", "parse_slo", "plan_backend", "probe", "run_plan"]
