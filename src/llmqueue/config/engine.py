"""Engine specs: the ``engine`` block of a single-engine scenario and each ``network.engines`` item.

Both share :class:`EngineFields` (policy, token_budget, max_batch_size, batch_time,
class_priority, memory), so a key means the same thing for a lone engine and for an engine of a
network. A network engine adds its ``name``, ``replicas`` behind a ``router``, and the
max-pressure settings (``inner``, ``weighting``, ``serve_nonpositive``), which need a network.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_serializer, model_validator

from ..policies import POLICIES, ClassPriority, Policy, make_policy, policy_names
from .fields import (
    BatchTimeSpec,
    BudgetTokens,
    MemorySpec,
    RouterRule,
    SmallCount,
    StaircaseSpec,
    Strict,
    Weighting,
    field_errors,
)

#: The network-only policy: back-pressure across the buffers of a network (docs/networks.md).
MAX_PRESSURE = "max-pressure"

#: Keys of a network engine that a single engine refuses (with a pointer to network scenarios).
NETWORK_ONLY_KEYS = ("name", "replicas", "router", "inner", "weighting", "serve_nonpositive")


class EngineFields(Strict):
    """What every engine has: its policy, budgets, batch-time model, class priority and KV memory."""

    policy: str = "sarathi"
    token_budget: BudgetTokens = 512
    max_batch_size: BudgetTokens | None = None
    batch_time: BatchTimeSpec = StaircaseSpec(model="staircase")
    class_priority: list[str] | None = None   # strict priority by job class (label), first is highest
    memory: MemorySpec | None = None          # KV-cache memory (None: the paper's unlimited memory)

    def _base_policy(self) -> Policy:
        inner = make_policy(self.policy, self.token_budget, self.max_batch_size)
        if self.class_priority:
            return ClassPriority(self.token_budget, self.max_batch_size, inner=inner,
                                 class_order=tuple(self.class_priority))
        return inner

    def build_memory(self):
        """The engine's :class:`~llmqueue.memory.config.MemoryConfig`, or None (unlimited memory)."""
        return self.memory.build() if self.memory is not None else None


class EngineSpec(EngineFields):
    """The ``engine`` block of a single-engine scenario."""

    @model_validator(mode="before")
    @classmethod
    def _no_network_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            problems = [((key,), ("a key of network engines: a single-engine scenario runs one engine "
                         "(write a network scenario, docs/networks.md)"), data[key])
                        for key in NETWORK_ONLY_KEYS if key in data]
            if problems:
                raise field_errors(cls.__name__, problems)
        return data

    @model_validator(mode="after")
    def _known_policy(self) -> EngineSpec:
        if self.policy.lower() == MAX_PRESSURE:
            raise ValueError("max-pressure balances the buffers of a network: it needs a network scenario")
        if self.policy.lower() not in policy_names():
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(policy_names())}")
        return self

    def build_policy(self) -> Policy:
        return self._base_policy()


class NetEngineSpec(EngineFields):
    """One item of ``network.engines``: an engine (or ``replicas`` of it behind a router named ``name``)."""

    name: str
    inner: str = "sarathi"                       # max-pressure: the policy within a buffer
    weighting: Weighting = "tokens"              # max-pressure: pressure in tokens, jobs or work
    serve_nonpositive: bool = False
    replicas: SmallCount = 1
    router: RouterRule = "round_robin"

    @model_validator(mode="after")
    def _known(self) -> NetEngineSpec:
        names = (*policy_names(), MAX_PRESSURE)
        if self.policy.lower() not in names:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(names)}")
        if self.inner.lower() not in POLICIES:
            raise ValueError(f"unknown inner policy {self.inner!r}; choose one of {', '.join(POLICIES)}")
        if self.policy.lower() == MAX_PRESSURE and self.class_priority:
            raise ValueError("max-pressure orders buffers itself: drop class_priority")
        return self

    @model_serializer(mode="wrap")
    def _name_first(self, handler) -> dict:
        d = handler(self)
        return {"name": d.pop("name"), **d} if "name" in d else d

    def build_policy(self) -> Policy:
        if self.policy.lower() == MAX_PRESSURE:
            from ..network.pressure import MaxPressure
            return MaxPressure(self.token_budget, self.max_batch_size,
                               inner=make_policy(self.inner, self.token_budget, self.max_batch_size),
                               weighting=self.weighting, serve_nonpositive=self.serve_nonpositive)
        return self._base_policy()

    def build(self):
        """``(engines, router)``: one NetEngine and no router, or the replicas and their router."""
        from ..network.model import NetEngine, replicas
        engine = NetEngine(self.name, self.build_policy(), self.batch_time.build(), self.build_memory())
        if self.replicas == 1:
            return (engine,), None
        return replicas(engine, self.replicas, self.router)
