"""The networks of the reproduced experiments, built in Python (the built-in YAML files match them).

- :func:`rybko_stolyar`: spec section 5's two-engine network at a given rho, under priority to
  the exiting classes (``"exit"``), the reverse (``"entry"``), plain Sarathi-Serve (``"fcfs"``)
  or max-pressure (``"max-pressure"``, with its weighting).
- :func:`agent_pipeline`: a feedforward network of four engines with unequal capacities and
  two job classes, a fork-join workflow (planner, then search and code in parallel, then
  writer) and a DAG (planner; search and code after it; a test call on the code engine after
  code; writer after search and test). Token means are set so that every engine is at the
  same rho.
"""

from __future__ import annotations

from ..engine.batch_time import ConstantBatchTime, paper_staircase
from ..policies import ClassPriority, make_policy
from ..workload.arrivals import PoissonArrivals
from .lengths import Poisson
from .model import JobClass, NetEngine, Network
from .pressure import MaxPressure
from .workflow import Parallel, Step, Workflow

#: Spec section 5: b_max = 768, batch time 1 s, load 608 lambda per engine.
RS_BUDGET, RS_WORK = 768, 608


def rs_rate(rho: float) -> float:
    """Arrival rate of each type at which both engines of the Rybko-Stolyar network are at ``rho``."""
    return rho * RS_BUDGET / RS_WORK


def rybko_stolyar(rho: float, rule: str = "exit", weighting: str = "tokens",
                  serve_nonpositive: bool = False) -> Network:
    """Spec section 5's network (see the module docstring)."""
    budget = RS_BUDGET

    def policy(exit_label: str, entry_label: str):
        if rule == "max-pressure":
            return MaxPressure(budget, weighting=weighting, serve_nonpositive=serve_nonpositive)
        inner = make_policy("sarathi", budget)
        if rule == "fcfs":
            return inner
        order = {"exit": (exit_label, entry_label), "entry": (entry_label, exit_label)}.get(rule)
        if order is None:
            raise ValueError(f"unknown rule {rule!r}; choose exit, entry, fcfs or max-pressure")
        return ClassPriority(budget, None, inner=inner, class_order=order)

    bt = ConstantBatchTime(1.0)
    e1 = NetEngine("e1", policy("B2", "A1"), bt)
    e2 = NetEngine("e2", policy("A2", "B1"), bt)
    lam = rs_rate(rho)
    short, long_ = (Poisson(32), Poisson(32)), (Poisson(512), Poisson(32))
    a = JobClass("A", PoissonArrivals(lam), Workflow.chain(Step("e1", *short, label="A1"),
                                                          Step("e2", *long_, label="A2")))
    b = JobClass("B", PoissonArrivals(lam), Workflow.chain(Step("e2", *short, label="B1"),
                                                          Step("e1", *long_, label="B2")))
    return Network((e1, e2), (a, b))


#: agent_pipeline: engine -> token budget (paper staircase), class rates (jobs/s)
PIPELINE_BUDGETS = {"planner": 512, "search": 1024, "code": 512, "writer": 256}
PIPELINE_RATES = {"fj": 2.0, "dag": 1.0}
#: fork-join class: (prompt, decode) means per engine
_FJ = {"planner": (400, 50), "search": (800, 30), "code": (500, 150), "writer": (900, 100)}
#: DAG class: prompt means; decode means fill each engine to rho (code's share: code 60%, test 40%)
_DAG_PROMPT = {"planner": 1500, "search": 1200, "code": 700, "test": 500, "writer": 500}


def pipeline_sizes(rho: float = 0.9) -> dict[str, dict[str, tuple[float, float]]]:
    """(prompt, decode) means per class and step that put every engine at ``rho``."""
    cap = {e: NetEngine(e, make_policy("sarathi", b), paper_staircase()).capacity for e, b in PIPELINE_BUDGETS.items()}
    lf, ld = PIPELINE_RATES["fj"], PIPELINE_RATES["dag"]
    dag: dict[str, tuple[float, float]] = {}
    for e in ("planner", "search", "writer"):
        need = (rho * cap[e] - lf * sum(_FJ[e])) / ld
        dag[e] = (_DAG_PROMPT[e], need - _DAG_PROMPT[e])
    need = (rho * cap["code"] - lf * sum(_FJ["code"])) / ld
    dag["code"] = (_DAG_PROMPT["code"], 0.6 * need - _DAG_PROMPT["code"])
    dag["test"] = (_DAG_PROMPT["test"], 0.4 * need - _DAG_PROMPT["test"])
    if min(d for _, d in dag.values()) <= 0:
        raise ValueError(f"rho = {rho} is too low for this pipeline's fixed prompts")
    return {"fj": {e: (float(p), float(d)) for e, (p, d) in _FJ.items()}, "dag": dag}


def agent_pipeline(scale: float = 1.0, policy: str = "sarathi", rho: float = 0.9) -> Network:
    """The pipeline at ``rho`` on every engine, arrival rates times ``scale`` (see the module docstring)."""
    sizes = pipeline_sizes(rho)
    engines = tuple(NetEngine(e, make_policy(policy, b), paper_staircase()) for e, b in PIPELINE_BUDGETS.items())

    def step(cls: str, name: str, engine: str, after=()) -> Step:
        p, d = sizes[cls][name]
        return Step(engine, Poisson(p), Poisson(d), name=name, after=tuple(after))

    fj = Workflow.chain(step("fj", "planner", "planner"),
                        Parallel(step("fj", "search", "search"), step("fj", "code", "code")),
                        step("fj", "writer", "writer"))
    dag = Workflow.dag([step("dag", "planner", "planner"),
                        step("dag", "search", "search", ["planner"]),
                        step("dag", "code", "code", ["planner"]),
                        step("dag", "test", "code", ["code"]),
                        step("dag", "writer", "writer", ["search", "test"])])
    classes = (JobClass("fj", PoissonArrivals(PIPELINE_RATES["fj"] * scale), fj),
               JobClass("dag", PoissonArrivals(PIPELINE_RATES["dag"] * scale), dag))
    return Network(engines, classes)
