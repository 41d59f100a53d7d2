"""Workflows: what one job of a class does, as steps that each visit one engine (or router).

A step is one LLM call: it visits an engine with its own prompt and decode token counts, drawn
afresh at every visit, under a ``label`` (the buffer it joins, which class-priority policies
see as ``job_class``). Three shapes, all compiled to one :class:`Workflow`:

- **chain / fork-join** (:meth:`Workflow.chain`): steps one after another; a :class:`Parallel`
  item forks parallel calls that must all finish before the next item starts.
- **DAG** (:meth:`Workflow.dag`): each step names the steps it waits for (``after``); a step
  starts when all of them are complete, the job arrives at the steps without ``after``.
- **probabilistic routing** (:meth:`Workflow.routing`): from ``start``, after each step the job
  goes to one of ``next`` with the given probabilities (the rest of the probability leaves);
  targets may be earlier steps, so the job may loop between engines.

Any step may also ``repeat``: after each of its visits it calls the same engine again with
probability ``repeat`` (an agent that calls again), so it makes a geometric number of visits.
A workflow uses either ``after`` (DAG) or ``next`` (routing), not both, because a join of
branches that may loop has no single meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..workload.lengths import LengthDistribution

_EPS = 1e-9


@dataclass(frozen=True)
class Step:
    """One LLM call of a workflow (see the module docstring)."""

    engine: str
    prompt_tokens: LengthDistribution
    decode_tokens: LengthDistribution
    name: str = ""
    label: str | None = None
    after: tuple[str, ...] = ()
    next: tuple[tuple[str, float], ...] = ()
    repeat: float = 0.0

    @property
    def buffer(self) -> str:
        """The label of a step in a network (every job class sets the missing ones, see ``with_labels``)."""
        assert self.label is not None, f"step {self.name!r} has no label yet"
        return self.label

    def __post_init__(self) -> None:
        object.__setattr__(self, "after", tuple(self.after))
        nxt = self.next.items() if isinstance(self.next, dict) else self.next
        object.__setattr__(self, "next", tuple((str(t), float(p)) for t, p in nxt))
        if not isinstance(self.engine, str) or not self.engine:
            raise ValueError(f"step {self.name!r}: engine must be a non-empty name, got {self.engine!r}")
        for what, d in (("prompt_tokens", self.prompt_tokens), ("decode_tokens", self.decode_tokens)):
            if not isinstance(d, LengthDistribution):
                raise ValueError(f"step {self.name!r}: {what} must be a length distribution, got {d!r}")
        if not 0.0 <= float(self.repeat) < 1.0:
            raise ValueError(f"step {self.name!r}: repeat must be a probability in [0, 1), got {self.repeat!r} "
                             f"(1 would call again for ever)")
        for target, p in self.next:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"step {self.name!r}: next[{target!r}] must be a probability in [0, 1], got {p}")
        total = sum(p for _, p in self.next)
        if total > 1 + _EPS:
            raise ValueError(f"step {self.name!r}: next probabilities add up to {total:g} > 1")

    @property
    def mean_tokens(self) -> float:
        """Mean prompt + decode tokens of one visit."""
        return self.prompt_tokens.mean + self.decode_tokens.mean


@dataclass(frozen=True)
class Parallel:
    """A fork-join stage of a chain: these steps run in parallel; the chain waits for all."""

    steps: tuple[Step, ...]

    def __init__(self, *steps: Step) -> None:
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        if not steps:
            raise ValueError("a parallel stage needs at least one step")
        object.__setattr__(self, "steps", tuple(steps))


@dataclass(frozen=True)
class Workflow:
    """Steps and the steps a job starts with. Build it with :meth:`chain`, :meth:`dag` or
    :meth:`routing`; the constructor checks references, cycles and that every job leaves."""

    steps: tuple[Step, ...]
    entry: tuple[str, ...]
    kind: str = "dag"                      # "dag" (chains and fork-join included) or "routing"
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "entry", tuple(self.entry))
        if not steps:
            raise ValueError("a workflow needs at least one step")
        if self.kind not in ("dag", "routing"):
            raise ValueError(f"workflow kind must be 'dag' or 'routing', got {self.kind!r}")
        index: dict[str, int] = {}
        for i, s in enumerate(steps):
            if not s.name:
                raise ValueError(f"step {i} has no name (DAG and routing steps need one: other steps refer to them "
                                 f"by name)")
            if s.name in index:
                raise ValueError(f"two steps are named {s.name!r}")
            index[s.name] = i
        object.__setattr__(self, "_index", index)
        for s in steps:
            for ref in (*s.after, *(t for t, _ in s.next)):
                if ref not in index:
                    raise ValueError(f"step {s.name!r} refers to {ref!r}, which is not a step of this workflow "
                                     f"(steps: {', '.join(index)})")
        if self.kind == "dag":
            if any(s.next for s in steps):
                raise ValueError("a DAG workflow cannot use 'next' (probabilistic routing): use a routing "
                                 "workflow, or 'after' dependencies only")
            self._check_acyclic()
        if not self.entry:
            raise ValueError("a workflow needs at least one entry step")
        for e in self.entry:
            if e not in index:
                raise ValueError(f"entry step {e!r} is not a step of this workflow")
        if self.kind == "dag":
            if set(self.entry) != {s.name for s in steps if not s.after}:
                raise ValueError("the entry steps of a DAG are exactly the steps without 'after'")
        else:
            if any(s.after for s in steps):
                raise ValueError("a routing workflow cannot use 'after' (joins): use a DAG workflow for "
                                 "fork-join, or 'next' only")
            v = self.visits_per_job()
            never = [s.name for s, x in zip(steps, v) if x <= _EPS]
            if never:
                raise ValueError(f"step(s) {', '.join(never)} can never be reached from the start step")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def chain(cls, *items: Step | Parallel) -> Workflow:
        """Items one after another; a :class:`Parallel` item is a fork-join stage."""
        if len(items) == 1 and isinstance(items[0], (list, tuple)):
            items = tuple(items[0])
        if not items:
            raise ValueError("a chain needs at least one step")
        steps: list[Step] = []
        prev: tuple[str, ...] = ()
        for i, item in enumerate(items):
            group = item.steps if isinstance(item, Parallel) else (item,)
            names = []
            for j, s in enumerate(group):
                if not isinstance(s, Step):
                    raise ValueError(f"chain item {i} must be a Step or a Parallel stage, got {s!r}")
                if s.after or s.next:
                    raise ValueError(f"chain step {s.name or i!r}: 'after' and 'next' are implied by the chain")
                name = s.name or (f"s{i}" if not isinstance(item, Parallel) else f"s{i}.{j}")
                steps.append(replace(s, name=name, after=prev))
                names.append(name)
            prev = tuple(names)
        entry = tuple(s.name for s in steps if not s.after)
        return cls(tuple(steps), entry, "dag")

    @classmethod
    def dag(cls, steps) -> Workflow:
        """Steps with ``after`` dependencies; the job starts with every step that has none."""
        steps = tuple(steps)
        return cls(steps, tuple(s.name for s in steps if not s.after), "dag")

    @classmethod
    def routing(cls, start: str, steps) -> Workflow:
        """Markov routing from ``start``: after a step, go to ``next`` targets with their
        probabilities (leave with the rest)."""
        return cls(tuple(steps), (start,), "routing")

    # -- structure ----------------------------------------------------------------------------
    def index(self, name: str) -> int:
        return self._index[name]

    def dependents(self) -> list[list[int]]:
        """For each step, the steps that list it in ``after``."""
        out: list[list[int]] = [[] for _ in self.steps]
        for i, s in enumerate(self.steps):
            for a in s.after:
                out[self._index[a]].append(i)
        return out

    def successors(self, i: int) -> list[tuple[int, float]]:
        """Steps that step ``i`` leads to when it completes, with the probability (1 for DAG edges)."""
        if self.kind == "dag":
            return [(j, 1.0) for j in self.dependents()[i]]
        return [(self._index[t], p) for t, p in self.steps[i].next]

    def _check_acyclic(self) -> None:
        state = [0] * len(self.steps)   # 0 new, 1 on the stack, 2 done

        def visit(i: int, path: list[str]) -> None:
            state[i] = 1
            for a in self.steps[i].after:
                j = self._index[a]
                if state[j] == 1:
                    cyc = path[path.index(self.steps[j].name):] + [self.steps[j].name]
                    raise ValueError(f"'after' dependencies form a cycle: {' -> '.join(reversed(cyc))}")
                if state[j] == 0:
                    visit(j, path + [self.steps[j].name])
            state[i] = 2

        for i in range(len(self.steps)):
            if state[i] == 0:
                visit(i, [self.steps[i].name])

    def visits_per_job(self) -> np.ndarray:
        """Expected visits per job to each step (the traffic equations of one job).

        DAG: every step runs once, with 1 / (1 - repeat) visits. Routing: v = e_start + P^T v with
        P the step-to-step visit routing (repeats included); an error if the job may never leave.
        """
        n = len(self.steps)
        rep = np.array([s.repeat for s in self.steps])
        if self.kind == "dag":
            return 1.0 / (1.0 - rep)
        p = np.zeros((n, n))
        for i, s in enumerate(self.steps):
            p[i, i] += s.repeat
            for t, q in s.next:
                p[i, self._index[t]] += (1.0 - s.repeat) * q
        e = np.zeros(n)
        e[self._index[self.entry[0]]] = 1.0
        if max(abs(np.linalg.eigvals(p))) >= 1 - 1e-12:
            raise ValueError("the routing never lets a job leave (some loop has probability 1): make the "
                             "'next' probabilities of a step in the loop add up to less than 1")
        return np.linalg.solve(np.eye(n) - p.T, e)

    def with_labels(self, class_name: str) -> Workflow:
        """The same workflow with every missing label set to ``<class>.<step>``."""
        steps = tuple(s if s.label else replace(s, label=f"{class_name}.{s.name}") for s in self.steps)
        return Workflow(steps, self.entry, self.kind)
