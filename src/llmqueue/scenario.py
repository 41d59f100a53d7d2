"""Declarative scenario files: one YAML document declares an engine and a workload.

The schema is strict (unknown keys and wrong types are errors) and every error is turned into
one line that names the key, so a user knows exactly what to change. Built-in scenarios
(``fig1``, ``fig8``, ``theorem2``, ``vertex-c``) can be named instead of a path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .engine.batch_time import (
    AffineBatchTime,
    BatchTimeModel,
    ConstantBatchTime,
    PiecewiseLinearBatchTime,
    StaircaseBatchTime,
)
from .errors import ScenarioError
from .policies import ClassPriority, Policy, make_policy, policy_names
from .workload import (
    DeterministicArrivals,
    Empirical,
    Fixed,
    GammaArrivals,
    Geometric,
    LogNormal,
    PoissonArrivals,
    SharedPrefix,
    Uniform,
    Workload,
    read_trace_arrays,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


# -- batch time -------------------------------------------------------------------------------
class StaircaseSpec(_Strict):
    model: Literal["staircase"]
    c_ms: NonNegFloat = 11.28
    a_ms: NonNegFloat = 35.47
    b0: Annotated[int, Field(ge=1)] = 128

    def build(self) -> BatchTimeModel:
        return StaircaseBatchTime(c=self.c_ms / 1e3, a=self.a_ms / 1e3, b0=self.b0)


class PiecewiseLinearSpec(_Strict):
    model: Literal["piecewise_linear"]
    c_ms: PosFloat
    a_ms: NonNegFloat            # ms per token above b0
    b0: Annotated[int, Field(ge=0)] = 0

    def build(self) -> BatchTimeModel:
        return PiecewiseLinearBatchTime(c=self.c_ms / 1e3, a=self.a_ms / 1e3, b0=self.b0)


class ConstantSpec(_Strict):
    model: Literal["constant"]
    t_ms: PosFloat

    def build(self) -> BatchTimeModel:
        return ConstantBatchTime(t=self.t_ms / 1e3)


class AffineSpec(_Strict):
    model: Literal["affine"]
    c_ms: PosFloat
    prefill_ms: NonNegFloat = 0.0     # ms per prefill token
    decode_ms: NonNegFloat = 0.0      # ms per decode token
    context_ms: NonNegFloat = 0.0     # ms per token of KV context in the batch

    def build(self) -> BatchTimeModel:
        return AffineBatchTime(c=self.c_ms / 1e3, a_prefill=self.prefill_ms / 1e3,
                               a_decode=self.decode_ms / 1e3, a_context=self.context_ms / 1e3)


class ProfileSpec(_Strict):
    """A measured hardware profile (``llmqueue profile``), loaded by name from the profiles folder."""

    model: Literal["profile"]
    name: str
    fit: Literal["recommended", "staircase", "piecewise_linear", "affine"] = "recommended"
    dir: str | None = None          # profiles folder (default $LLMQUEUE_PROFILES or ~/.llmqueue/profiles)

    def build(self) -> BatchTimeModel:
        from .real.profiles import load_profile
        return load_profile(self.name, None if self.fit == "recommended" else self.fit, self.dir)


BatchTimeSpec = Annotated[Union[StaircaseSpec, PiecewiseLinearSpec, ConstantSpec, AffineSpec, ProfileSpec],
                          Field(discriminator="model")]


class MemorySpec(_Strict):
    """KV-cache memory: a capacity in tokens, or a model served on a GPU (docs/memory.md)."""

    capacity_tokens: Annotated[int, Field(ge=1)] | None = None
    model: str | None = None                 # e.g. llama-3-8b, codellama-34b (see `llmqueue kv-capacity`)
    gpu: str | None = None                   # e.g. a100-80gb, h100-80gb
    num_gpus: Annotated[int, Field(ge=1)] = 1
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    block_size: Annotated[int, Field(ge=1)] = 16
    preemption: Literal["recompute", "swap"] = "recompute"
    swap_us_per_token: NonNegFloat | None = None   # default: from the GPU's host link, else 0
    prefix_caching: bool = False             # requests with the same prefix_id share its KV blocks

    @model_validator(mode="after")
    def _one_source(self) -> "MemorySpec":
        if (self.capacity_tokens is None) == (self.model is None and self.gpu is None):
            raise ValueError("memory needs either 'capacity_tokens' or both 'model' and 'gpu'")
        if self.capacity_tokens is None and (self.model is None or self.gpu is None):
            raise ValueError("memory derived from hardware needs both 'model' and 'gpu'")
        self.budget()  # unknown presets, or weights that do not fit, fail here with the reason
        return self

    def budget(self):
        """The hardware arithmetic (None when the capacity is given directly)."""
        if self.capacity_tokens is not None:
            return None
        from .memory.hardware import kv_budget
        return kv_budget(self.model, self.gpu, num_gpus=self.num_gpus,
                         utilization=self.gpu_memory_utilization, block_size=self.block_size)

    def build(self):
        from .memory.config import MemoryConfig
        b = self.budget()
        cap = self.capacity_tokens if b is None else b.capacity_tokens
        swap = (self.swap_us_per_token / 1e6 if self.swap_us_per_token is not None
                else (b.swap_s_per_token if b is not None else 0.0))
        return MemoryConfig(capacity_tokens=cap, block_size=self.block_size, preemption=self.preemption,
                            swap_s_per_token=swap, prefix_caching=self.prefix_caching)


class EngineSpec(_Strict):
    policy: str = "sarathi"
    token_budget: Annotated[int, Field(ge=1)] = 512
    max_batch_size: Annotated[int, Field(ge=1)] | None = None
    batch_time: BatchTimeSpec = StaircaseSpec(model="staircase")
    class_priority: list[str] | None = None   # strict priority by job class, first is highest
    memory: MemorySpec | None = None          # KV-cache memory (None: the paper's unlimited memory)

    @model_validator(mode="after")
    def _known_policy(self) -> "EngineSpec":
        if self.policy.lower() not in policy_names():
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(policy_names())}")
        return self

    def build_policy(self) -> Policy:
        inner = make_policy(self.policy, self.token_budget, self.max_batch_size)
        if self.class_priority:
            return ClassPriority(self.token_budget, self.max_batch_size, inner=inner,
                                 class_order=tuple(self.class_priority))
        return inner


# -- workload ---------------------------------------------------------------------------------
class ArrivalSpec(_Strict):
    process: Literal["poisson", "deterministic", "gamma"] = "poisson"
    rate: PosFloat
    burstiness: PosFloat = 1.0

    def build(self):
        if self.process == "poisson":
            return PoissonArrivals(self.rate)
        if self.process == "deterministic":
            return DeterministicArrivals(self.rate)
        return GammaArrivals(self.rate, self.burstiness)


class FixedSpec(_Strict):
    dist: Literal["fixed"]
    value: Annotated[int, Field(ge=0)]

    def build(self, base: Path):
        return Fixed(self.value)


class UniformSpec(_Strict):
    dist: Literal["uniform"]
    low: Annotated[int, Field(ge=0)]
    high: Annotated[int, Field(ge=0)]

    def build(self, base: Path):
        return Uniform(self.low, self.high)


class GeometricSpec(_Strict):
    dist: Literal["geometric"]
    mean: Annotated[float, Field(ge=1, allow_inf_nan=False)]

    def build(self, base: Path):
        return Geometric(self.mean)


class LogNormalSpec(_Strict):
    dist: Literal["lognormal"]
    mean: PosFloat
    sigma: NonNegFloat
    min: Annotated[int, Field(ge=0)] = 1
    max: Annotated[int, Field(ge=1)] | None = None

    def build(self, base: Path):
        return LogNormal(self.mean, self.sigma, min=self.min, max=self.max)


class EmpiricalSpec(_Strict):
    dist: Literal["empirical"]
    values: list[Annotated[int, Field(ge=0)]] | None = None
    weights: list[NonNegFloat] | None = None
    file: str | None = None
    column: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "EmpiricalSpec":
        if (self.values is None) == (self.file is None):
            raise ValueError("empirical needs exactly one of 'values' (a list) or 'file' (a path)")
        return self

    def build(self, base: Path):
        if self.file is not None:
            return Empirical.from_file(_resolve(base, self.file), column=self.column)
        return Empirical(tuple(self.values), None if self.weights is None else tuple(self.weights))


LengthSpec = Annotated[Union[FixedSpec, UniformSpec, GeometricSpec, LogNormalSpec, EmpiricalSpec],
                       Field(discriminator="dist")]


class InitialRequestSpec(_Strict):
    prompt_tokens: Annotated[int, Field(ge=0)] = 0
    decode_tokens: Annotated[int, Field(ge=0)]
    label: str | None = None


class PrefixSpec(_Strict):
    """Shared prompt prefixes of the generated requests: ``groups`` prefixes of ``tokens`` tokens."""

    groups: Annotated[int, Field(ge=1)]
    tokens: Annotated[int, Field(ge=1)]


class WorkloadSpec(_Strict):
    arrival: ArrivalSpec | None = None
    trace: str | None = None
    prompt_tokens: LengthSpec | None = None
    decode_tokens: LengthSpec | None = None
    initial_requests: list[InitialRequestSpec] = []
    num_requests: Annotated[int, Field(ge=0)] | None = None
    duration_s: PosFloat | None = None
    job_class: str = "default"
    prefix: PrefixSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "WorkloadSpec":
        if self.prefix is not None and self.arrival is None:
            raise ValueError("'prefix' applies to generated requests (give 'arrival'); a trace gives "
                             "prefixes in its prefix_id,prefix_tokens columns")
        if self.trace is not None and self.arrival is not None:
            raise ValueError("give either 'arrival' (a generated workload) or 'trace' (replay), not both")
        if self.arrival is not None:
            if self.prompt_tokens is None or self.decode_tokens is None:
                raise ValueError("a generated workload needs 'prompt_tokens' and 'decode_tokens' distributions")
            if self.num_requests is None and self.duration_s is None:
                raise ValueError("a generated workload needs 'num_requests' or 'duration_s' (else it never ends)")
        if self.trace is None and self.arrival is None and not self.initial_requests:
            raise ValueError("the workload is empty: give 'arrival' with length distributions, "
                             "'trace', or 'initial_requests'")
        for i, r in enumerate(self.initial_requests):
            if r.prompt_tokens + r.decode_tokens == 0:
                raise ValueError(f"initial_requests[{i}] has no tokens (prompt 0 and decode 0)")
        return self


class SimulationSpec(_Strict):
    horizon_s: PosFloat | None = None
    record_composition: bool = False


class Scenario(_Strict):
    engine: EngineSpec = EngineSpec()
    workload: WorkloadSpec
    seed: Annotated[int, Field(ge=0)] = 0
    simulation: SimulationSpec = SimulationSpec()
    name: str | None = None
    description: str | None = None

    #: directory that relative paths in the scenario are resolved against (not a YAML key)
    _base: Path = Path(".")

    def build_workload(self) -> Workload:
        w = self.workload
        trace = read_trace_arrays(_resolve(self._base, w.trace)) if w.trace is not None else None
        return Workload(
            arrival=w.arrival.build() if w.arrival is not None else None,
            prompt_tokens=w.prompt_tokens.build(self._base) if w.prompt_tokens is not None else None,
            decode_tokens=w.decode_tokens.build(self._base) if w.decode_tokens is not None else None,
            trace=trace,
            initial=tuple((r.prompt_tokens, r.decode_tokens, r.label) for r in w.initial_requests),
            num_requests=w.num_requests, duration_s=w.duration_s, job_class=w.job_class,
            prefix=SharedPrefix(w.prefix.groups, w.prefix.tokens) if w.prefix is not None else None)

    def build_batch_time(self) -> BatchTimeModel:
        return self.engine.batch_time.build()

    def build_policy(self) -> Policy:
        return self.engine.build_policy()


def _resolve(base: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


#: Discriminator values that pydantic puts in error locations; they are dropped from key paths.
TAGS = frozenset({"staircase", "piecewise_linear", "constant", "affine", "profile", "fixed", "uniform",
                  "geometric", "lognormal", "empirical"})


def format_validation(source: str, err: ValidationError, tags=TAGS, doc: str = "docs/scenarios.md") -> str:
    """One line per schema error: ``source: dotted.key: what is wrong``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not isinstance(x, str) or x not in tags)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key (check its spelling and the reference in {doc})"
        lines.append(f"{source}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def builtin_scenarios() -> dict[str, Path]:
    """Scenario files shipped with the package, by name."""
    root = resources.files("llmqueue") / "data" / "scenarios"
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


#: An override value that removes the key from the scenario (a string, so it survives pickling).
UNSET = "__delete__"


def set_dotted(d: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating levels; the value :data:`UNSET` removes the key."""
    keys = dotted.split(".")
    for k in keys[:-1]:
        nxt = d.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            d[k] = nxt
        d = nxt
    if value == UNSET:
        d.pop(keys[-1], None)
    else:
        d[keys[-1]] = value


def load_scenario(source: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read a scenario (a path, a built-in name, or None for ``fig1``) and apply dotted overrides.

    Overrides map dotted keys to values, e.g. ``{"engine.token_budget": 256}``; a value of None
    leaves the key as it is and :data:`UNSET` removes it.
    """
    name = "fig1" if source is None else str(source)
    path = Path(name)
    builtins = builtin_scenarios()
    if not path.exists() and name in builtins:
        path = builtins[name]
    if not path.exists():
        raise ScenarioError(f"{name}: no such scenario file (built-in scenarios: {', '.join(sorted(builtins))})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a YAML mapping with keys engine, workload, seed")
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, key, value)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(format_validation(str(path), e)) from None
    sc._base = path.parent
    return sc


def check_runnable(sc: Scenario, workload: Workload) -> None:
    """Refuse configurations that can never make progress, before running them."""
    policy = sc.build_policy()
    if policy.whole_prefill:
        biggest = workload.max_prompt_tokens
        if biggest is not None and biggest > policy.token_budget:
            raise ScenarioError(
                f"no batch can be formed: {policy.name} schedules prompts whole, but prompts reach "
                f"{biggest} tokens and engine.token_budget is {policy.token_budget}. Raise "
                f"engine.token_budget to at least {biggest}, or use policy orca or sarathi (they chunk prompts).")
