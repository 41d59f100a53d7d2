"""A network of LLM engines: engines, routers over replicas, and job classes with workflows.

- :class:`NetEngine`: one engine with its own policy (token budget, k_max inside it) and
  batch-time model. Its capacity is Theorem 2's ``b_max / t(b_max)`` tokens per second.
- :class:`Router`: a name that steps may target instead of an engine; each visit is sent to one
  of its engines by a rule (round robin, join the shortest queue, least outstanding tokens,
  power of two choices). :func:`replicas` builds n identical engines behind one router.
- :class:`JobClass`: an external arrival process of jobs and their :class:`Workflow`.
- :class:`Network`: all of it, checked once: names resolve, labels (buffers) are unique.

Labels name buffers: every step of every class has its own label (default ``<class>.<step>``),
which is the ``job_class`` its requests carry, so strict class priority and max-pressure act
on buffers, and the fluid model has one buffer per label.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dc_field

from ..engine.batch_time import BatchTimeModel
from ..memory.config import MemoryConfig
from ..policies.base import Policy
from ..workload.arrivals import ArrivalProcess
from .workflow import Workflow

#: Routing rules of a router.
ROUTER_RULES = ("round_robin", "jsq", "least_tokens", "power_of_two", "cache_aware")


def _check_parts(owner: str, name: object, who: str,
                 parts: tuple[tuple[str, object, type | tuple[type, ...], str], ...] = ()) -> None:
    """``name`` non-empty (else "``owner`` needs a non-empty name"), then each part
    ``(field, value, type, what)`` an instance of its type (else "``who`` 'name': field must be what")."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{owner} needs a non-empty name, got {name!r}")
    for field, value, kind, what in parts:
        if not isinstance(value, kind):
            raise ValueError(f"{who} {name!r}: {field} must be {what}, got {value!r}")


@dataclass(frozen=True)
class NetEngine:
    """An engine of the network; ``memory`` (None: not modelled) is its own KV cache."""

    name: str
    policy: Policy
    batch_time: BatchTimeModel
    memory: MemoryConfig | None = None

    def __post_init__(self) -> None:
        _check_parts("an engine", self.name, "engine", (
            ("policy", self.policy, Policy, "a Policy"),
            ("batch_time", self.batch_time, BatchTimeModel, "a batch-time model"),
            ("memory", self.memory, (MemoryConfig, type(None)), "a MemoryConfig")))

    @property
    def capacity(self) -> float:
        """b_max / t(b_max) in tokens per second (Theorem 2's capacity of a full batch)."""
        from ..analysis.theory import peak_token_rate
        return peak_token_rate(self.batch_time, self.policy.token_budget)


@dataclass(frozen=True)
class Router:
    """Sends each visit addressed to ``name`` to one of ``engines`` by ``rule``."""

    name: str
    engines: tuple[str, ...]
    rule: str = "round_robin"

    def __post_init__(self) -> None:
        object.__setattr__(self, "engines", tuple(self.engines))
        _check_parts("a router", self.name, "router")
        if not self.engines:
            raise ValueError(f"router {self.name!r} has no engines")
        if len(set(self.engines)) != len(self.engines):
            raise ValueError(f"router {self.name!r} lists an engine twice")
        if self.rule not in ROUTER_RULES:
            raise ValueError(f"router {self.name!r}: unknown rule {self.rule!r}; choose one of "
                             f"{', '.join(ROUTER_RULES)}")
        if self.rule == "power_of_two" and len(self.engines) < 2:
            raise ValueError(f"router {self.name!r}: power_of_two needs at least 2 engines")


def replicas(engine: NetEngine, n: int, rule: str = "round_robin") -> tuple[tuple[NetEngine, ...], Router]:
    """``n`` copies of ``engine`` named ``<name>[0]`` ... and a router named ``<name>`` over them."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"replicas must be a positive integer, got {n!r}")
    copies = tuple(replace(engine, name=f"{engine.name}[{i}]") for i in range(n))
    return copies, Router(engine.name, tuple(e.name for e in copies), rule)


@dataclass(frozen=True)
class KVLink:
    """The link that carries a prompt's KV cache from a prefill engine to a decode engine: a
    transfer of ``b`` bytes takes ``latency_s + b / bandwidth_bytes_per_s`` seconds (transfers do
    not queue behind each other: each pair of engines has its own link)."""

    bandwidth_bytes_per_s: float
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.bandwidth_bytes_per_s, (int, float)) and 0 < self.bandwidth_bytes_per_s < float("inf")):
            raise ValueError(f"link bandwidth must be a finite number > 0 bytes/s, got {self.bandwidth_bytes_per_s!r}")
        if not (isinstance(self.latency_s, (int, float)) and 0 <= self.latency_s < float("inf")):
            raise ValueError(f"link latency_s must be a finite number >= 0, got {self.latency_s!r}")

    def transfer_s(self, nbytes: float) -> float:
        return self.latency_s + nbytes / self.bandwidth_bytes_per_s


@dataclass(frozen=True)
class Disaggregation:
    """Prefill and decode on separate pools (DistServe, Mooncake): a visit addressed to
    ``prefill`` (an engine or a router) runs its prompt there and leaves after its last prompt
    token; its KV cache (``kv_bytes_per_token`` per prompt token) crosses ``link``; then it joins
    a ``decode`` engine (or router) with its prompt already computed, where it takes KV memory and
    decodes. Visits addressed to other engines run whole, as usual."""

    prefill: str
    decode: str
    link: KVLink
    kv_bytes_per_token: float

    def __post_init__(self) -> None:
        if not (isinstance(self.kv_bytes_per_token, (int, float)) and 0 <= self.kv_bytes_per_token < float("inf")):
            raise ValueError(f"kv_bytes_per_token must be a finite number >= 0, got {self.kv_bytes_per_token!r}")
        if self.prefill == self.decode:
            raise ValueError(f"prefill and decode pools must differ, both are {self.prefill!r}")

    def transfer_s(self, prompt_tokens: int) -> float:
        """Seconds to move the KV cache of ``prompt_tokens`` tokens."""
        return self.link.transfer_s(prompt_tokens * self.kv_bytes_per_token)


@dataclass(frozen=True)
class JobClass:
    """Jobs that arrive by ``arrival`` and follow ``workflow`` (labels default to ``<name>.<step>``).

    ``share_context``: a job's visits form one growing token stream (:mod:`.context`): a visit's
    prompt is the job's context so far (earlier visits' new prompt tokens and outputs) plus its
    step's ``prompt_tokens`` draw (the new tokens), with block hashes of ``hash_block_tokens``
    tokens so that an engine with prefix caching serves the shared part from its cache."""

    name: str
    arrival: ArrivalProcess
    workflow: Workflow
    # not in the repr, so a network without them prints (and hashes in tests) as before
    share_context: bool = dc_field(default=False, repr=False)
    hash_block_tokens: int = dc_field(default=16, repr=False)

    def __post_init__(self) -> None:
        _check_parts("a job class", self.name, "class", (
            ("arrival", self.arrival, ArrivalProcess, "an arrival process"),
            ("workflow", self.workflow, Workflow, "a Workflow"),
            ("share_context", self.share_context, bool, "true or false")))
        if not (isinstance(self.hash_block_tokens, int) and self.hash_block_tokens >= 1):
            raise ValueError(f"class {self.name!r}: hash_block_tokens must be an integer >= 1, "
                             f"got {self.hash_block_tokens!r}")
        object.__setattr__(self, "workflow", self.workflow.with_labels(self.name))

    @property
    def rate(self) -> float:
        return self.arrival.mean_rate


@dataclass(frozen=True)
class Network:
    """Engines, routers and job classes; see the module docstring."""

    engines: tuple[NetEngine, ...]
    classes: tuple[JobClass, ...]
    routers: tuple[Router, ...] = ()
    # not in the repr, so a network without a split prints (and hashes in tests) as before
    disaggregation: Disaggregation | None = dc_field(default=None, repr=False)

    def __post_init__(self) -> None:
        for attr in ("engines", "classes", "routers"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not self.engines:
            raise ValueError("a network needs at least one engine")
        if not self.classes:
            raise ValueError("a network needs at least one job class")
        names: set[str] = set()
        nodes: tuple[NetEngine | Router, ...] = (*self.engines, *self.routers)
        for x in nodes:
            if x.name in names:
                raise ValueError(f"the name {x.name!r} is used twice (engines and routers share one namespace)")
            names.add(x.name)
        engine_names = {e.name for e in self.engines}
        for r in self.routers:
            for e in r.engines:
                if e not in engine_names:
                    raise ValueError(f"router {r.name!r} refers to {e!r}, which is not an engine")
        class_names: set[str] = set()
        labels: dict[str, str] = {}
        for c in self.classes:
            if c.name in class_names:
                raise ValueError(f"two job classes are named {c.name!r}")
            class_names.add(c.name)
            for s in c.workflow.steps:
                if s.engine not in names:
                    raise ValueError(f"class {c.name!r}, step {s.name!r}: {s.engine!r} is neither an engine nor a "
                                     f"router (known: {', '.join(sorted(names))})")
                if s.buffer in labels:
                    raise ValueError(f"label {s.buffer!r} is used by {labels[s.buffer]} and by class {c.name!r} step "
                                     f"{s.name!r}: every step needs its own label (it names a buffer)")
                labels[s.buffer] = f"class {c.name!r} step {s.name!r}"
        dis = self.disaggregation
        if dis is not None:
            for what, name in (("prefill", dis.prefill), ("decode", dis.decode)):
                if name not in names:
                    raise ValueError(f"disaggregation: {what} pool {name!r} is neither an engine nor a router")
            both = set(self.members(dis.prefill)) & set(self.members(dis.decode))
            if both:
                raise ValueError(f"disaggregation: {', '.join(sorted(both))} in both the prefill and the decode pool")
            from .pressure import MaxPressure
            if any(isinstance(e.policy, MaxPressure) for e in self.engines):
                raise ValueError("disaggregation: max-pressure engines are not supported with a prefill/decode split")

    # -- lookups ------------------------------------------------------------------------------
    def engine(self, name: str) -> NetEngine:
        for e in self.engines:
            if e.name == name:
                return e
        raise KeyError(name)

    def router(self, name: str) -> Router | None:
        for r in self.routers:
            if r.name == name:
                return r
        return None

    def members(self, target: str) -> tuple[str, ...]:
        """Engines a visit to ``target`` (an engine or a router) may be served by."""
        r = self.router(target)
        return r.engines if r is not None else (target,)

    def steps(self):
        """(class index, step index, class, step) for every step of every class."""
        for ci, c in enumerate(self.classes):
            for si, s in enumerate(c.workflow.steps):
                yield ci, si, c, s

    def labels(self) -> list[str]:
        return [s.label for _, _, _, s in self.steps()]

    def scaled(self, factor: float) -> Network:
        """The same network with every class's arrival rate multiplied by ``factor``."""
        return replace(self, classes=tuple(replace(c, arrival=scale_arrival(c.arrival, factor))
                                           for c in self.classes))


def scale_arrival(arrival: ArrivalProcess, factor: float) -> ArrivalProcess:
    """The same kind of arrival process with its rate multiplied by ``factor`` (> 0)."""
    if not factor > 0:
        raise ValueError(f"a load scale must be > 0, got {factor!r}")
    if not hasattr(arrival, "rate"):
        raise ValueError(f"cannot scale the rate of {type(arrival).__name__}: it has no 'rate' parameter")
    return replace(arrival, rate=arrival.rate * factor)  # type: ignore[type-var]  # every rated process is a dataclass
