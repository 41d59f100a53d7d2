"""Network scenario files: a YAML mapping with a top-level ``network`` key (schema in docs/networks.md).

Strict like single-engine scenarios: unknown keys and wrong types are errors, each reported on
one line that names the key. Batch-time models, arrival processes and length distributions use
the single-engine syntax, plus ``{dist: poisson, mean: 32}`` token counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from ..policies import POLICIES, ClassPriority, Policy, make_policy
from ..scenario import (
    TAGS,
    ArrivalSpec,
    BatchTimeSpec,
    EmpiricalSpec,
    FixedSpec,
    GeometricSpec,
    LogNormalSpec,
    ScenarioError,
    StaircaseSpec,
    UniformSpec,
    builtin_scenarios,
    format_validation,
    set_dotted,
)
from .lengths import Poisson
from .model import ROUTER_RULES, JobClass, NetEngine, Network, Router, replicas
from .pressure import WEIGHTINGS, MaxPressure
from .workflow import Parallel, Step, Workflow

NETWORK_POLICIES = (*POLICIES, "max-pressure")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Prob = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class PoissonSpec(_Strict):
    dist: Literal["poisson"]
    mean: PosFloat

    def build(self, base: Path):
        return Poisson(self.mean)


LengthSpec = Annotated[Union[FixedSpec, UniformSpec, GeometricSpec, LogNormalSpec, EmpiricalSpec, PoissonSpec],
                       Field(discriminator="dist")]


class StepSpec(_Strict):
    engine: str
    prompt_tokens: LengthSpec
    decode_tokens: LengthSpec
    name: str | None = None
    label: str | None = None
    after: list[str] = []
    next: dict[str, Prob] = {}
    repeat: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0

    def build(self, base: Path) -> Step:
        return Step(self.engine, self.prompt_tokens.build(base), self.decode_tokens.build(base), self.name or "",
                    self.label, tuple(self.after), tuple(self.next.items()), self.repeat)


class ParallelSpec(_Strict):
    parallel: list[StepSpec] = Field(min_length=1)


ChainItem = Annotated[Union[Annotated[StepSpec, Tag("step")], Annotated[ParallelSpec, Tag("parallel")]],
                      Discriminator(lambda v: "parallel" if isinstance(v, dict) and "parallel" in v
                                    or isinstance(v, ParallelSpec) else "step")]


class RoutingSpec(_Strict):
    start: str
    steps: list[StepSpec] = Field(min_length=1)


class WorkflowSpec(_Strict):
    chain: list[ChainItem] | None = None
    dag: list[StepSpec] | None = None
    routing: RoutingSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> WorkflowSpec:
        given = [k for k in ("chain", "dag", "routing") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a workflow is exactly one of 'chain' (with 'parallel' stages for fork-join), "
                             "'dag' (steps with 'after') or 'routing' (start and steps with 'next')")
        return self

    def build(self, base: Path) -> Workflow:
        if self.chain is not None:
            return Workflow.chain(*[Parallel(*[s.build(base) for s in it.parallel]) if isinstance(it, ParallelSpec)
                                    else it.build(base) for it in self.chain])
        if self.dag is not None:
            return Workflow.dag([s.build(base) for s in self.dag])
        assert self.routing is not None  # exactly one of chain, dag, routing (validated)
        return Workflow.routing(self.routing.start, [s.build(base) for s in self.routing.steps])


class ClassSpec(_Strict):
    name: str
    arrival: ArrivalSpec
    workflow: WorkflowSpec


class EngineSpec(_Strict):
    name: str
    policy: str = "sarathi"
    token_budget: Annotated[int, Field(ge=1)] = 512
    max_batch_size: Annotated[int, Field(ge=1)] | None = None
    batch_time: BatchTimeSpec = StaircaseSpec(model="staircase")
    class_priority: list[str] | None = None
    inner: str = "sarathi"                       # max-pressure: the policy within a buffer
    weighting: Literal[tuple(WEIGHTINGS)] = "tokens"  # type: ignore[valid-type]
    serve_nonpositive: bool = False
    replicas: Annotated[int, Field(ge=1)] = 1
    router: Literal[ROUTER_RULES] = "round_robin"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _known(self) -> EngineSpec:
        if self.policy.lower() not in NETWORK_POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(NETWORK_POLICIES)}")
        if self.inner.lower() not in POLICIES:
            raise ValueError(f"unknown inner policy {self.inner!r}; choose one of {', '.join(POLICIES)}")
        if self.policy.lower() == "max-pressure" and self.class_priority:
            raise ValueError("max-pressure orders buffers itself: drop class_priority")
        return self

    def build(self) -> tuple[tuple[NetEngine, ...], Router | None]:
        pol: Policy
        if self.policy.lower() == "max-pressure":
            pol = MaxPressure(self.token_budget, self.max_batch_size,
                              inner=make_policy(self.inner, self.token_budget, self.max_batch_size),
                              weighting=self.weighting, serve_nonpositive=self.serve_nonpositive)
        else:
            pol = make_policy(self.policy, self.token_budget, self.max_batch_size)
            if self.class_priority:
                pol = ClassPriority(self.token_budget, self.max_batch_size, inner=pol,
                                    class_order=tuple(self.class_priority))
        engine = NetEngine(self.name, pol, self.batch_time.build())
        if self.replicas == 1:
            return (engine,), None
        return replicas(engine, self.replicas, self.router)


class RouterSpec(_Strict):
    name: str
    engines: list[str] = Field(min_length=1)
    rule: Literal[ROUTER_RULES] = "round_robin"  # type: ignore[valid-type]


class NetworkBody(_Strict):
    engines: list[EngineSpec] = Field(min_length=1)
    routers: list[RouterSpec] = []
    classes: list[ClassSpec] = Field(min_length=1)


class SimulationSpec(_Strict):
    horizon_s: PosFloat | None = None
    duration_s: PosFloat | None = None
    sample_interval_s: PosFloat | None = None
    max_backlog_tokens: PosFloat | None = None

    @model_validator(mode="after")
    def _ends(self) -> SimulationSpec:
        if self.horizon_s is None and self.duration_s is None:
            raise ValueError("give horizon_s (stop time) or duration_s (arrivals stop), else the run never ends")
        return self


class NetworkScenario(_Strict):
    network: NetworkBody
    seed: Annotated[int, Field(ge=0)] = 0
    simulation: SimulationSpec
    name: str | None = None
    description: str | None = None

    _base: Path = Path(".")

    def build(self) -> Network:
        """The :class:`Network`; a ScenarioError names what is inconsistent."""
        try:
            engines: list[NetEngine] = []
            routers: list[Router] = []
            for e in self.network.engines:
                built, router = e.build()
                engines.extend(built)
                if router is not None:
                    routers.append(router)
            routers += [Router(r.name, tuple(r.engines), r.rule) for r in self.network.routers]
            classes = [JobClass(c.name, c.arrival.build(), c.workflow.build(self._base))
                       for c in self.network.classes]
            return Network(tuple(engines), tuple(classes), tuple(routers))
        except ValueError as e:
            raise ScenarioError(f"{self.name or 'network scenario'}: {e}") from None


_TAGS = TAGS | {"poisson", "step", "parallel"}


def _format(source: str, err: ValidationError) -> str:
    return format_validation(source, err, _TAGS, "docs/networks.md")


def resolve_source(source: str | Path | None) -> Path | None:
    """The scenario file for a path or a built-in name, or None if there is none."""
    if source is None:
        return None
    path = Path(str(source))
    if path.exists():
        return path
    return builtin_scenarios().get(str(source))


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None


def is_network_scenario(source: str | Path | None) -> bool:
    """Whether ``source`` (a path or a built-in name) is a YAML mapping with a top-level ``network`` key."""
    path = resolve_source(source)
    if path is None or not path.is_file():
        return False
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "network" in data


def load_network_scenario(source: str | Path, overrides: dict[str, Any] | None = None) -> NetworkScenario:
    """Read a network scenario; ``overrides`` maps dotted keys (``simulation.horizon_s``, ``seed``) to values
    (None leaves a key as it is)."""
    path = resolve_source(source)
    if path is None:
        raise ScenarioError(f"{source}: no such scenario file (built-in scenarios: "
                            f"{', '.join(sorted(builtin_scenarios()))})")
    data = read_yaml(path)
    if not isinstance(data, dict) or "network" not in data:
        raise ScenarioError(f"{path}: a network scenario is a YAML mapping with a top-level 'network' key")
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, key, value)
    try:
        sc = NetworkScenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_format(str(path), e)) from None
    sc._base = path.parent
    return sc
