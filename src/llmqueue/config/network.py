"""The ``network`` block: engines, routers and job classes whose workflows visit them (docs/networks.md).

Cross-references are checked here, each error at its field path: steps and routers must name
engines (or routers) that exist, workflow steps must name steps of their workflow, and
``class_priority`` must name labels (buffers) that some step declares, so a typo cannot silently
change which buffer goes first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Discriminator, Field, Tag, model_validator

from .engine import NetEngineSpec
from .fields import (
    ArrivalSpec,
    LengthSpec,
    NonNegFloat,
    PosFloat,
    PosTokenCount,
    Prob,
    RouterRule,
    Strict,
    field_errors,
)


class StepSpec(Strict):
    engine: str
    prompt_tokens: LengthSpec
    decode_tokens: LengthSpec
    name: str | None = None
    label: str | None = None
    after: list[str] = Field(default_factory=list)
    next: dict[str, Prob] = Field(default_factory=dict)
    repeat: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0

    def build(self, base: Path):
        from ..network.workflow import Step
        return Step(self.engine, self.prompt_tokens.build(base), self.decode_tokens.build(base), self.name or "",
                    self.label, tuple(self.after), tuple(self.next.items()), self.repeat)


class ParallelSpec(Strict):
    parallel: list[StepSpec] = Field(min_length=1)


ChainItem = Annotated[Annotated[StepSpec, Tag("step")] | Annotated[ParallelSpec, Tag("parallel")],
                      Discriminator(lambda v: "parallel" if isinstance(v, dict) and "parallel" in v
                                    or isinstance(v, ParallelSpec) else "step")]


class RoutingSpec(Strict):
    start: str
    steps: list[StepSpec] = Field(min_length=1)


class WorkflowSpec(Strict):
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

    def located_steps(self) -> list[tuple[tuple, str | None, StepSpec]]:
        """``(location, name, step)`` for every step; ``name`` is the step's name, or the one a
        chain gives it (``s<i>`` or ``s<i>.<j>`` in a parallel stage), None if it has none."""
        out: list[tuple[tuple, str | None, StepSpec]] = []
        if self.chain is not None:
            for i, item in enumerate(self.chain):
                if isinstance(item, ParallelSpec):
                    out += [(("chain", i, "parallel", j), s.name or f"s{i}.{j}", s)
                            for j, s in enumerate(item.parallel)]
                else:
                    out.append((("chain", i), item.name or f"s{i}", item))
        elif self.dag is not None:
            out = [(("dag", i), s.name, s) for i, s in enumerate(self.dag)]
        elif self.routing is not None:
            out = [(("routing", "steps", i), s.name, s) for i, s in enumerate(self.routing.steps)]
        return out

    def problems(self) -> list[tuple[tuple, str, object]]:
        """Steps named in ``after``, ``next`` or ``start`` that are not steps of this workflow."""
        steps = self.located_steps()
        names = [n for _, n, _ in steps if n]
        known = f"(steps: {', '.join(names)})"
        out: list[tuple[tuple, str, object]] = []
        for loc, _, s in steps:
            out += [((*loc, "after", k), f"{ref!r} is not a step of this workflow {known}", ref)
                    for k, ref in enumerate(s.after) if ref not in names]
            out += [((*loc, "next", ref), f"{ref!r} is not a step of this workflow {known}", ref)
                    for ref in s.next if ref not in names]
        if self.routing is not None and self.routing.start not in names:
            out.append((("routing", "start"), f"{self.routing.start!r} is not a step of this workflow {known}",
                        self.routing.start))
        return out

    def build(self, base: Path):
        from ..network.workflow import Parallel, Workflow
        if self.chain is not None:
            return Workflow.chain(*[Parallel(*[s.build(base) for s in it.parallel]) if isinstance(it, ParallelSpec)
                                    else it.build(base) for it in self.chain])
        if self.dag is not None:
            return Workflow.dag([s.build(base) for s in self.dag])
        assert self.routing is not None   # exactly one of the three (checked at validation)
        return Workflow.routing(self.routing.start, [s.build(base) for s in self.routing.steps])


class ClassSpec(Strict):
    name: str
    arrival: ArrivalSpec
    workflow: WorkflowSpec
    share_context: bool = False          # visits form one growing token stream (docs/agentic.md)
    hash_block_tokens: PosTokenCount = 16   # block size of that stream's block hashes

    def labels(self) -> list[tuple[tuple, str]]:
        """``(location, label)`` of every step: its ``label``, else ``<class>.<step name>``."""
        return [(loc, s.label or f"{self.name}.{n}") for loc, n, s in self.workflow.located_steps()
                if s.label or n]


class RouterSpec(Strict):
    name: str
    engines: list[str] = Field(min_length=1)
    rule: RouterRule = "round_robin"


class LinkSpec(Strict):
    """The KV-transfer link: ``bandwidth_gbps`` gigabits per second, ``latency_s`` per transfer."""

    bandwidth_gbps: PosFloat
    latency_s: NonNegFloat = 0.0


class DisaggregationSpec(Strict):
    """A prefill/decode split (docs/agentic.md): steps addressed to ``prefill`` run their prompt
    there, their KV cache crosses ``link`` and a ``decode`` engine decodes them. The KV bytes per
    prompt token come from ``model`` (memory/hardware.py) or ``kv_bytes_per_token``."""

    prefill: str
    decode: str
    link: LinkSpec
    model: str | None = None
    kv_bytes_per_token: PosFloat | None = None

    @model_validator(mode="after")
    def _bytes(self) -> DisaggregationSpec:
        if (self.model is None) == (self.kv_bytes_per_token is None):
            raise ValueError("give exactly one of 'model' (its KV bytes per token) or 'kv_bytes_per_token'")
        if self.model is not None:
            from ..memory.hardware import get_model
            get_model(self.model)
        return self

    def build(self):
        from ..memory.hardware import get_model
        from ..network.model import Disaggregation, KVLink
        per_token = (float(get_model(self.model).kv_bytes_per_token) if self.model is not None
                     else float(self.kv_bytes_per_token or 0.0))
        return Disaggregation(self.prefill, self.decode, KVLink(self.link.bandwidth_gbps * 1e9 / 8,
                                                                self.link.latency_s), per_token)


class NetworkSpec(Strict):
    engines: list[NetEngineSpec] = Field(min_length=1)
    routers: list[RouterSpec] = Field(default_factory=list)
    classes: list[ClassSpec] = Field(min_length=1)
    disaggregation: DisaggregationSpec | None = None

    @model_validator(mode="after")
    def _references(self) -> NetworkSpec:
        problems = self.problems()
        if problems:
            raise field_errors(type(self).__name__, problems)
        return self

    def engine_names(self) -> list[str]:
        """Names of the engines that run (``<name>[i]`` for each replica)."""
        return [n for e in self.engines
                for n in ([e.name] if e.replicas == 1 else [f"{e.name}[{i}]" for i in range(e.replicas)])]

    def labels(self) -> list[str]:
        return [label for c in self.classes for _, label in c.labels()]

    def problems(self) -> list[tuple[tuple, str, object]]:
        """Every dangling or doubled name, as ``(location, message, value)``."""
        out: list[tuple[tuple, str, object]] = []
        engines = self.engine_names()
        seen: set[str] = set()
        named = [(("engines", i, "name"), e.name) for i, e in enumerate(self.engines)]
        named += [(("routers", i, "name"), r.name) for i, r in enumerate(self.routers)]
        for loc, name in named:
            if name in seen:
                out.append((loc, f"the name {name!r} is used twice (engines and routers share one namespace)", name))
            seen.add(name)
        targets = sorted(seen | set(engines))
        for i, r in enumerate(self.routers):
            out += [(("routers", i, "engines", j), f"{e!r} is not an engine (engines: {', '.join(engines)})", e)
                    for j, e in enumerate(r.engines) if e not in engines]
        classes: set[str] = set()
        labels: dict[str, tuple] = {}
        for ci, c in enumerate(self.classes):
            if c.name in classes:
                out.append((("classes", ci, "name"), f"two job classes are named {c.name!r}", c.name))
            classes.add(c.name)
            wf = ("classes", ci, "workflow")
            out += [((*wf, *loc), msg, v) for loc, msg, v in c.workflow.problems()]
            for loc, _, s in c.workflow.located_steps():
                if s.engine not in targets:
                    out.append(((*wf, *loc, "engine"), (f"{s.engine!r} is neither an engine nor a router "
                                f"(known: {', '.join(targets)})"), s.engine))
            for loc, label in c.labels():
                if label in labels:
                    where = ".".join(str(x) for x in labels[label])
                    out.append(((*wf, *loc), (f"label {label!r} is already used by network.{where}: every step "
                                f"needs its own label (it names a buffer)"), label))
                labels.setdefault(label, (*wf, *loc))
        dis = self.disaggregation
        if dis is not None:
            for key in ("prefill", "decode"):
                name = getattr(dis, key)
                if name not in targets:
                    out.append((("disaggregation", key), f"{name!r} is neither an engine nor a router "
                                f"(known: {', '.join(targets)})", name))
        for i, e in enumerate(self.engines):
            out += [(("engines", i, "class_priority", j), (f"{name!r} is not the label of any step (labels: "
                     f"{', '.join(labels)})"), name)
                    for j, name in enumerate(e.class_priority or ()) if name not in labels]
        return out

    def build(self, base: Path):
        """The :class:`~llmqueue.network.model.Network`; a ValueError names the part at fault."""
        from ..network.model import JobClass, Network, Router
        engines, routers = [], []
        for e in self.engines:
            built, router = e.build()
            engines.extend(built)
            if router is not None:
                routers.append(router)
        routers += [Router(r.name, tuple(r.engines), r.rule) for r in self.routers]
        classes = []
        for ci, c in enumerate(self.classes):
            try:
                classes.append(JobClass(c.name, c.arrival.build(), c.workflow.build(base), c.share_context,
                                        c.hash_block_tokens))
            except ValueError as err:
                raise ValueError(f"network.classes.{ci}.workflow: {err}") from None
        try:
            return Network(tuple(engines), tuple(classes), tuple(routers),
                           self.disaggregation.build() if self.disaggregation is not None else None)
        except ValueError as err:
            raise ValueError(f"network: {err}") from None
