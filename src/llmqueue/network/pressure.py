"""Maximum-pressure (back-pressure) batch scheduling for networks of engines.

At every iteration the engine ranks its buffers (labels) by **pressure**, in tokens,

    pressure(i) = W_i - sum_k g_ik * W_k,

where W_i is the unprocessed tokens of buffer i (here, from the engine's view) and the sum runs
over the buffers k that i feeds: W_k is their backlog anywhere in the network (from a read-only
snapshot provider) and g_ik = P(i -> k) * m_k / m_i is the token gain, the tokens that
processing one token of i adds to k on average (m = mean tokens of one visit). Serving buffer i
at token rate r changes V = sum W^2 / 2 at rate -r * pressure(i), so serving the largest
pressure first makes the quadratic Lyapunov function fall fastest: this is Dai and Lin's
maximum-pressure rule (Operations Research 2005), written for batched token service.

The batch is then filled like strict class priority in that order (:class:`ClassPriority`):
the inner policy (Sarathi-Serve by default: decodes first, then prefill chunks, FCFS) fills
the budget from the highest-pressure buffer, what is left goes to the next, within the token
budget and k_max. As in Dai and Lin, buffers with non-positive pressure are not served: the
batch may be partial, or empty, and then the engine idles on purpose (the network simulator
gives such engines ``idle_wait``, the time of a one-token batch, after which they look again).
Idling is what stabilises cyclic networks: an engine stops feeding a congested downstream
buffer. ``serve_nonpositive=True`` gives the work-conserving variant, which serves those
buffers last instead; it is *not* throughput-optimal (on the Rybko-Stolyar network it keeps
pushing short entering visits into the congested long buffer and diverges).

The policy is a pure function of its inputs: :meth:`MaxPressure.plan` takes the view and a
backlog mapping; ``__call__`` asks the bound provider for that mapping. Without a provider (or
for a buffer that feeds nothing) the downstream term is 0, so it ranks its own buffers by
backlog: longest queue (in tokens) first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import cast

from ..engine.plan import EMPTY_PLAN, BatchPlan
from ..engine.state import EngineView
from ..policies.base import InnerPolicy, Policy
from ..policies.priority import ClassPriority
from ..policies.real_systems import SarathiServe

#: label -> ((downstream label, expected visits there per completed visit here), ...)
Routes = tuple[tuple[str, tuple[tuple[str, float], ...]], ...]

#: Lyapunov weights c_i = m_i ** -exponent of V = sum_i c_i W_i^2 / 2 (see the module docstring).
WEIGHTINGS = {"work": 0.0, "tokens": 1.0, "jobs": 2.0}


def _pairs(x) -> dict:
    return dict(x.items() if isinstance(x, dict) else x)


@dataclass(frozen=True)
class MaxPressure(InnerPolicy):
    """Serve buffers in decreasing pressure order (see the module docstring)."""

    routes: Routes = ()
    visit_tokens: tuple[tuple[str, float], ...] = ()
    weighting: str = "tokens"
    serve_nonpositive: bool = False
    backlog: Callable[[], Mapping[str, float]] | None = field(default=None, compare=False, repr=False)
    _coef: dict = field(init=False, compare=False, repr=False)

    name = "max-pressure"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inner is None:
            object.__setattr__(self, "inner", SarathiServe(self.token_budget, self.max_batch_size))
        if not isinstance(self.inner, Policy):
            raise ValueError(f"max-pressure: inner must be a Policy, got {self.inner!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"max-pressure: unknown weighting {self.weighting!r}; choose one of "
                             f"{', '.join(WEIGHTINGS)}")
        m = {str(k): float(v) for k, v in _pairs(self.visit_tokens).items()}
        if any(not v > 0 for v in m.values()):
            raise ValueError("max-pressure: mean tokens per visit must be > 0")
        routes = {}
        for label, targets in _pairs(self.routes).items():
            targets = tuple((str(k), float(p)) for k, p in targets)
            if any(p < 0 for _, p in targets):
                raise ValueError(f"max-pressure: routing probabilities of {label!r} must be >= 0")
            routes[str(label)] = targets
        object.__setattr__(self, "routes", tuple(sorted(routes.items())))
        object.__setattr__(self, "visit_tokens", tuple(sorted(m.items())))
        # pressure(i) = c_i W_i - sum_k coef_ik W_k, coef_ik = P_ik (m_k / m_i) c_k, c = m ** -exponent
        a = WEIGHTINGS[self.weighting]
        c = {k: v ** -a for k, v in m.items()}
        coef = {}
        for label in set(m) | set(routes):
            mi = m.get(label)
            down = tuple((k, p * m[k] / mi * c[k]) for k, p in routes.get(label, ())
                         if mi is not None and k in m and p > 0)
            coef[label] = (c.get(label, 1.0), down)
        object.__setattr__(self, "_coef", coef)

    @property
    def work_conserving(self) -> bool:  # type: ignore[override]
        return self.serve_nonpositive and self.base.work_conserving

    @property
    def may_idle(self) -> bool:
        """Whether the policy may leave work unserved on purpose (the engine then needs idle_wait)."""
        return not self.serve_nonpositive

    def bind(self, routes: Routes | dict, visit_tokens, backlog: Callable[[], Mapping[str, float]] | None
             ) -> MaxPressure:
        """This policy with the network's routing, mean visit sizes and a backlog provider."""
        return replace(self, routes=cast(Routes, routes), visit_tokens=visit_tokens, backlog=backlog)

    # -- the rule -----------------------------------------------------------------------------
    @staticmethod
    def own_backlog(view: EngineView) -> dict[str, int]:
        """Unprocessed tokens per label in this engine, in FCFS order of each label's oldest request."""
        out: dict[str, int] = {}
        for s in view.requests:
            out[s.job_class] = out.get(s.job_class, 0) + s.prefill_left + s.decode_left
        return out

    def pressures(self, view: EngineView, backlog: Mapping[str, float]) -> dict[str, float]:
        """pressure(i) for every label present in the engine."""
        own = self.own_backlog(view)
        coef = self._coef
        out = {}
        for label, w in own.items():
            ci, down = coef.get(label, (1.0, ()))
            out[label] = ci * w - sum(g * backlog.get(k, 0.0) for k, g in down)
        return out

    def plan(self, view: EngineView, backlog: Mapping[str, float]) -> BatchPlan:
        """The batch for ``view`` given the network's buffer backlogs (tokens per label)."""
        p = self.pressures(view, backlog)
        first = {label: i for i, label in enumerate(p)}
        order = tuple(sorted(p, key=lambda label: (-p[label], first[label])))
        if not self.serve_nonpositive:
            order = tuple(label for label in order if p[label] > 0)
            if len(order) < len(p):
                if not order:
                    return EMPTY_PLAN
                keep = set(order)
                view = EngineView(view.now, [s for s in view.requests if s.job_class in keep], view.free_kv_tokens)
        return ClassPriority(self.token_budget, self.max_batch_size, inner=self.inner, class_order=order)(view)

    def __call__(self, view: EngineView) -> BatchPlan:
        return self.plan(view, self.backlog() if self.backlog is not None else {})

    def describe(self) -> str:
        variant = ", serving non-positive pressure last" if self.serve_nonpositive else ""
        return f"max-pressure ({self.weighting}{variant}) over {self.base.describe()}"
