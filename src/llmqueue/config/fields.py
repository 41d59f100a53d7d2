"""Specs shared by every part of a scenario: batch time, KV memory, arrivals and token lengths.

Each spec is a strict pydantic model (unknown keys and wrong types are errors) with a
``build()`` that returns the library object it describes. A single engine and the engines of a
network use the same specs, so a key means the same thing wherever it appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..engine.batch_time import (
    AffineBatchTime,
    BatchTimeModel,
    ConstantBatchTime,
    PiecewiseLinearBatchTime,
    StaircaseBatchTime,
)
from ..engine.limits import (
    MAX_BUDGET_TOKENS,
    MAX_KV_BLOCKS,
    MAX_KV_TOKENS,
    MAX_REPLICAS,
    MAX_REQUEST_TOKENS,
    MAX_REQUESTS,
    too_large,
)
from ..workload import (
    DeterministicArrivals,
    Empirical,
    Fixed,
    GammaArrivals,
    Geometric,
    LengthDistribution,
    LogNormal,
    PoissonArrivals,
    Uniform,
)


class Strict(BaseModel):
    """Base of every spec: unknown keys are refused and a validated spec is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Prob = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
PosInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]
#: Sizes with an upper bound (llmqueue.engine.limits): token counts of one request, budgets and
#: KV capacities, numbers of requests, and small counts (replicas, GPUs).
TokenCount = Annotated[int, Field(ge=0, le=MAX_REQUEST_TOKENS)]
PosTokenCount = Annotated[int, Field(ge=1, le=MAX_REQUEST_TOKENS)]
TokenMean = Annotated[float, Field(gt=0, le=MAX_REQUEST_TOKENS, allow_inf_nan=False)]
BudgetTokens = Annotated[int, Field(ge=1, le=MAX_BUDGET_TOKENS)]
RequestCount = Annotated[int, Field(ge=0, le=MAX_REQUESTS)]
SmallCount = Annotated[int, Field(ge=1, le=MAX_REPLICAS)]


def _router_rule(value: str) -> str:
    # imported when a network is validated, not before
    from ..network.model import ROUTER_RULES
    return _one_of(value, ROUTER_RULES, "router rule")


def _weighting(value: str) -> str:
    from ..network.pressure import WEIGHTINGS
    return _one_of(value, WEIGHTINGS, "weighting")


def _one_of(value: str, choices, what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


#: How a router picks an engine (network.model.ROUTER_RULES), and max-pressure's weighting.
RouterRule = Annotated[str, AfterValidator(_router_rule)]
Weighting = Annotated[str, AfterValidator(_weighting)]


def resolve(base: Path, path: str) -> Path:
    """``path`` as written in a scenario: absolute, or relative to the scenario's folder."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


# -- batch time -------------------------------------------------------------------------------
class _AboveB0(Strict):
    """The two batch-time models built from a fixed time ``c_ms``, a slope ``a_ms`` and a token scale
    ``b0`` (staircase: ``a`` per started ``b0`` tokens; piecewise linear: ``a`` per token above ``b0``)."""

    model: str
    c_ms: float
    a_ms: float
    b0: int

    def build(self) -> BatchTimeModel:
        cls = StaircaseBatchTime if self.model == "staircase" else PiecewiseLinearBatchTime
        return cls(c=self.c_ms / 1e3, a=self.a_ms / 1e3, b0=self.b0)


class StaircaseSpec(_AboveB0):
    model: Literal["staircase"]
    c_ms: NonNegFloat = 11.28
    a_ms: NonNegFloat = 35.47
    b0: PosTokenCount = 128


class PiecewiseLinearSpec(_AboveB0):
    model: Literal["piecewise_linear"]
    c_ms: PosFloat
    a_ms: NonNegFloat            # ms per token above b0
    b0: TokenCount = 0


class ConstantSpec(Strict):
    model: Literal["constant"]
    t_ms: PosFloat

    def build(self) -> BatchTimeModel:
        return ConstantBatchTime(t=self.t_ms / 1e3)


class AffineSpec(Strict):
    model: Literal["affine"]
    c_ms: PosFloat
    prefill_ms: NonNegFloat = 0.0     # ms per prefill token
    decode_ms: NonNegFloat = 0.0      # ms per decode token
    context_ms: NonNegFloat = 0.0     # ms per token of KV context in the batch

    def build(self) -> BatchTimeModel:
        return AffineBatchTime(c=self.c_ms / 1e3, a_prefill=self.prefill_ms / 1e3,
                               a_decode=self.decode_ms / 1e3, a_context=self.context_ms / 1e3)


class ProfileSpec(Strict):
    """A measured hardware profile (``llmqueue profile``), loaded by name from the profiles folder."""

    model: Literal["profile"]
    name: str
    fit: Literal["recommended", "staircase", "piecewise_linear", "affine"] = "recommended"
    dir: str | None = None          # profiles folder (default $LLMQUEUE_PROFILES or ~/.llmqueue/profiles)

    def build(self) -> BatchTimeModel:
        from ..real.profiles import load_profile
        return load_profile(self.name, None if self.fit == "recommended" else self.fit, self.dir)


class GpuProfileSpec(Strict):
    """A real GPU's batch times from aiconfigurator-core's performance databases (optional extra
    ``gpu``; docs/plan.md): ``{model: gpu-profile, model_id: llama-3.1-8b, gpu: h100, backend: vllm, tp: 1}``."""

    model: Literal["gpu-profile"]
    model_id: str = "llama-3.1-8b"
    gpu: str = "h100"
    backend: Literal["vllm", "sglang", "trtllm"] = "vllm"
    tp: PosInt = 1

    def build(self) -> BatchTimeModel:
        from ..engine.gpu_profile import GpuProfileBatchTime
        return GpuProfileBatchTime(self.model_id, self.gpu, self.backend, self.tp)


BatchTimeSpec = Annotated[StaircaseSpec | PiecewiseLinearSpec | ConstantSpec | AffineSpec | ProfileSpec
                          | GpuProfileSpec,
                          Field(discriminator="model")]


# -- KV memory --------------------------------------------------------------------------------
class MemorySpec(Strict):
    """KV-cache memory: a capacity in tokens, or a model served on a GPU (docs/memory.md)."""

    capacity_tokens: Annotated[int, Field(ge=1, le=MAX_KV_TOKENS)] | None = None
    model: str | None = None                 # e.g. llama-3-8b, codellama-34b (see `llmqueue kv-capacity`)
    gpu: str | None = None                   # e.g. a100-80gb, h100-80gb
    num_gpus: SmallCount = 1
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    block_size: PosTokenCount = 16
    preemption: Literal["recompute", "swap"] = "recompute"
    swap_us_per_token: NonNegFloat | None = None   # default: from the GPU's host link, else 0
    prefix_caching: bool = False             # requests with the same prefix_id share its KV blocks
    eviction: Literal["lru", "ttl", "workflow"] = "lru"  # ttl: a finished request's cached prefix is kept
    # ttl_s first; workflow: a network job's prefix is kept while its workflow will come back (docs/agentic.md)
    ttl_s: NonNegFloat = 0.0
    host_cache_tokens: Annotated[int, Field(ge=0)] = 0   # host-memory tier for evicted prefix blocks

    @model_validator(mode="after")
    def _one_source(self) -> MemorySpec:
        if (self.capacity_tokens is None) == (self.model is None and self.gpu is None):
            raise ValueError("memory needs either 'capacity_tokens' or both 'model' and 'gpu'")
        if self.capacity_tokens is None and (self.model is None or self.gpu is None):
            raise ValueError("memory derived from hardware needs both 'model' and 'gpu'")
        if self.capacity_tokens is not None and self.capacity_tokens < self.block_size:
            raise ValueError(f"capacity_tokens ({self.capacity_tokens}) must hold at least one block "
                             f"(block_size {self.block_size} tokens)")
        if self.eviction == "ttl" and not self.ttl_s > 0:
            raise ValueError("eviction 'ttl' needs ttl_s > 0 (seconds a finished request's prefix is kept)")
        if (self.eviction != "lru" or self.host_cache_tokens) and not self.prefix_caching:
            raise ValueError("eviction 'ttl' / 'workflow' and host_cache_tokens retain prefix-cache blocks: "
                             "they need prefix_caching: true")
        b = self.budget()  # unknown presets, or weights that do not fit, fail here with the reason
        cap = self.capacity_tokens if b is None else b.capacity_tokens
        assert cap is not None   # one of the two sources (checked above)
        if -(-cap // self.block_size) > MAX_KV_BLOCKS:
            raise ValueError(too_large(f"the number of KV blocks ({cap} tokens / block_size {self.block_size})",
                                       -(-cap // self.block_size), MAX_KV_BLOCKS)
                             + "; raise block_size or lower the capacity")
        return self

    def budget(self):
        """The hardware arithmetic (None when the capacity is given directly)."""
        if self.capacity_tokens is not None:
            return None
        from ..memory.hardware import kv_budget
        return kv_budget(self.model, self.gpu, num_gpus=self.num_gpus,
                         utilization=self.gpu_memory_utilization, block_size=self.block_size)

    def build(self):
        """The :class:`~llmqueue.memory.config.MemoryConfig` this spec describes."""
        from ..memory.config import MemoryConfig
        b = self.budget()
        cap = self.capacity_tokens if b is None else b.capacity_tokens
        swap = (self.swap_us_per_token / 1e6 if self.swap_us_per_token is not None
                else (b.swap_s_per_token if b is not None else 0.0))
        return MemoryConfig(capacity_tokens=cap, block_size=self.block_size, preemption=self.preemption,
                            swap_s_per_token=swap, prefix_caching=self.prefix_caching,
                            eviction=self.eviction, ttl_s=self.ttl_s, host_cache_tokens=self.host_cache_tokens)


# -- arrivals ---------------------------------------------------------------------------------
class ArrivalSpec(Strict):
    process: Literal["poisson", "deterministic", "gamma"] = "poisson"
    rate: PosFloat
    burstiness: PosFloat = 1.0

    def build(self):
        if self.process == "poisson":
            return PoissonArrivals(self.rate)
        if self.process == "deterministic":
            return DeterministicArrivals(self.rate)
        return GammaArrivals(self.rate, self.burstiness)


# -- token lengths ----------------------------------------------------------------------------
def _distribution(dist: str) -> type[LengthDistribution]:
    if dist == "poisson":
        from ..network.lengths import Poisson  # the network's length law, imported when used
        return Poisson
    laws: dict[str, type[LengthDistribution]] = {"fixed": Fixed, "uniform": Uniform, "geometric": Geometric,
                                                 "lognormal": LogNormal}
    return laws[dist]


class _Parametric(Strict):
    """A length distribution whose parameters are the spec's keys besides ``dist``, by name."""

    dist: str

    def build(self, base: Path) -> LengthDistribution:
        return _distribution(self.dist)(**self.model_dump(exclude={"dist"}))


class FixedSpec(_Parametric):
    dist: Literal["fixed"]
    value: TokenCount


class UniformSpec(_Parametric):
    dist: Literal["uniform"]
    low: TokenCount
    high: TokenCount


class GeometricSpec(_Parametric):
    dist: Literal["geometric"]
    mean: Annotated[float, Field(ge=1, le=MAX_REQUEST_TOKENS, allow_inf_nan=False)]


class LogNormalSpec(_Parametric):
    dist: Literal["lognormal"]
    mean: TokenMean
    sigma: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]
    min: TokenCount = 1
    max: PosTokenCount | None = None


class PoissonSpec(_Parametric):
    dist: Literal["poisson"]
    mean: TokenMean


class EmpiricalSpec(Strict):
    dist: Literal["empirical"]
    values: list[TokenCount] | None = None
    weights: list[NonNegFloat] | None = None
    file: str | None = None
    column: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EmpiricalSpec:
        if (self.values is None) == (self.file is None):
            raise ValueError("empirical needs exactly one of 'values' (a list) or 'file' (a path)")
        return self

    def build(self, base: Path) -> LengthDistribution:
        if self.file is not None:
            return Empirical.from_file(resolve(base, self.file), column=self.column)
        return Empirical(tuple(self.values or ()), None if self.weights is None else tuple(self.weights))


LengthSpec = Annotated[FixedSpec | UniformSpec | GeometricSpec | LogNormalSpec | EmpiricalSpec | PoissonSpec,
                       Field(discriminator="dist")]

#: Discriminator values that pydantic puts in error locations; they are dropped from key paths.
TAGS = frozenset({"staircase", "piecewise_linear", "constant", "affine", "profile", "fixed", "uniform",
                  "geometric", "lognormal", "empirical", "poisson", "step", "parallel"})


def field_errors(model: str, problems: Sequence[tuple[tuple, str, object]]) -> ValidationError:
    """A pydantic ValidationError with one error per ``(loc, message, value)`` problem.

    Raised from a validator it keeps its locations (relative to the model being validated), so
    the one-line report names the exact field (``network.engines.1.class_priority.0: ...``)
    instead of the enclosing model.
    """
    return ValidationError.from_exception_data(model, [InitErrorDetails(
        type=PydanticCustomError("scenario", "{message}", {"message": m}), loc=loc, input=v)
        for loc, m, v in problems])
