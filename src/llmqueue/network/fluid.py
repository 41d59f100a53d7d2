"""A fluid model of a network under its engines' rules, integrated numerically.

One buffer per label holds w_i tokens of fluid. A station (an engine, or a router's engines
taken together) processes at most its capacity ``b_max / t(b_max)`` tokens per second (the
full batch; in the fluid limit a batch never lacks requests). Processing r_i tokens/s of
buffer i completes r_i / m_i visits per second (m_i: mean tokens per visit), which then repeat,
route or release the steps waiting for them exactly as jobs do; a step joining several
branches is released at the rate of the slowest branch (the minimum of the cumulative branch
completions). External arrivals bring lambda_c * m_i tokens/s to entry buffers.

Each station splits its capacity by its rule, read off the engines' policies (a router's
engines together take the first engine's rule):

- strict class priority: labels in priority order, each taking all it can (an empty buffer
  takes its inflow); labels not listed come last, sharing like ``proportional``;
- max-pressure: labels in decreasing pressure order, with the policy's weighting; labels with
  non-positive pressure get nothing unless the policy serves them last;
- anything else (FCFS policies): ``proportional``, capacity shared in proportion to what each
  buffer could take (backlog plus inflow), an approximation of FCFS in the fluid scale.

Integration is explicit Euler with step ``dt``: in a step a buffer can be served at most
``w_i / dt`` plus its inflow, which makes empty buffers be served at their inflow rate. The
model is scale-free (from k * w0 the solution is k * w(t / k)), so :func:`fluid_verdict` starts
from one unit of fluid in each buffer in turn and reports whether the total drains to 0
(stable rule) or grows (the rule diverges, as priority to the exiting classes does in the
Rybko-Stolyar network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..policies.priority import ClassPriority
from .model import Network
from .pressure import WEIGHTINGS, MaxPressure
from .traffic import step_loads


@dataclass(frozen=True)
class StationRule:
    """How one station splits its capacity: ``priority`` (with ``order``), ``max-pressure``
    (with ``weighting`` and ``serve_nonpositive``) or ``proportional``."""

    kind: str = "proportional"
    order: tuple[str, ...] = ()
    weighting: str = "tokens"
    serve_nonpositive: bool = False


def station_rule(policy) -> StationRule:
    """The fluid rule of an engine's policy."""
    if isinstance(policy, ClassPriority):
        return StationRule("priority", tuple(policy.class_order))
    if isinstance(policy, MaxPressure):
        return StationRule("max-pressure", weighting=policy.weighting, serve_nonpositive=policy.serve_nonpositive)
    return StationRule()


@dataclass
class FluidModel:
    """The fluid network of :class:`Network` ``net`` (see the module docstring)."""

    net: Network
    rules: dict[str, StationRule] | None = None
    labels: list[str] = field(init=False)

    def __post_init__(self) -> None:
        net = self.net
        self.labels = net.labels()
        idx = {lab: i for i, lab in enumerate(self.labels)}
        stations: dict[str, list[str]] = {}       # station name -> engines
        used_directly = set()
        for _, _, _, s in net.steps():
            members = net.members(s.engine)
            if net.router(s.engine) is None:
                used_directly.add(s.engine)
            stations[s.engine] = list(members)
        pooled = [e for st, ms in stations.items() if net.router(st) is not None for e in ms]
        if len(pooled) != len(set(pooled)) or set(pooled) & used_directly:
            raise ValueError("the fluid model needs every engine in at most one station: an engine is used "
                             "directly and through a router, or by two routers")
        self.station_names = list(stations)
        self.capacity = np.array([sum(net.engine(e).capacity for e in stations[st]) for st in self.station_names])
        rules = dict(self.rules or {})
        self.station_rules = [rules.get(st) or station_rule(net.engine(stations[st][0]).policy)
                              for st in self.station_names]
        n = len(self.labels)
        self.station_of = np.zeros(n, dtype=int)
        self.m = np.zeros(n)
        self.alpha = np.zeros(n)            # external visits per second
        self.repeat = np.zeros(n)
        self.route: list[list[tuple[int, float]]] = [[] for _ in range(n)]   # single-predecessor flows
        self.joins: list[tuple[int, list[int]]] = []                          # (join buffer, branch buffers)
        for _, _, c, s in net.steps():
            i = idx[s.label]
            self.station_of[i] = self.station_names.index(s.engine)
            self.m[i] = max(s.mean_tokens, 1e-12)
            self.repeat[i] = s.repeat
            wf = c.workflow
            if s.name in wf.entry:
                self.alpha[i] += c.rate
            k = wf.index(s.name)
            for j, p in wf.successors(k):
                t = wf.steps[j]
                if wf.kind == "dag" and len(t.after) > 1:
                    continue
                self.route[i].append((idx[t.label], p))
            if wf.kind == "dag" and len(s.after) > 1:
                self.joins.append((i, [idx[c.workflow.steps[wf.index(a)].label] for a in s.after]))
        # max-pressure coefficients, per weighting: pressure_i = c_i w_i - sum_k g_ik w_k
        self._mp: dict[str, list[tuple[float, list[tuple[int, float]]]]] = {}
        for w in {r.weighting for r in self.station_rules if r.kind == "max-pressure"}:
            a = WEIGHTINGS[w]
            cw = self.m ** -a
            coefs = []
            for i in range(n):
                down: dict[int, float] = {}
                if self.repeat[i] > 0:
                    down[i] = down.get(i, 0.0) + self.repeat[i] * cw[i]
                for j, p in self.route[i]:
                    down[j] = down.get(j, 0.0) + (1 - self.repeat[i]) * p * self.m[j] / self.m[i] * cw[j]
                for jb, branches in self.joins:
                    if i in branches:
                        share = (1 - self.repeat[i]) / len(branches) * self.m[jb] / self.m[i]
                        down[jb] = down.get(jb, 0.0) + share * cw[jb]
                coefs.append((cw[i], list(down.items())))
            self._mp[w] = coefs
        self.members = [[i for i in range(n) if self.station_of[i] == s] for s in range(len(self.station_names))]
        # tokens of future work (this visit's rest and every later visit) per token in buffer i
        p = np.zeros((n, n))
        for i in range(n):
            p[i, i] += self.repeat[i]
            for j, q in self.route[i]:
                p[i, j] += (1 - self.repeat[i]) * q
        for jb, branches in self.joins:
            for b in branches:
                p[b, jb] += (1 - self.repeat[b]) / len(branches)
        self.work_per_token = np.linalg.solve(np.eye(n) - p, self.m) / self.m

        # static service orders: priority lists are fixed, proportional stations share
        self._plans: list[tuple[Any, list[int], list[int]]] = []
        for st, idxs in enumerate(self.members):
            rule = self.station_rules[st]
            if rule.kind == "priority":
                rank = {lab: k for k, lab in enumerate(rule.order)}
                first = sorted((i for i in idxs if self.labels[i] in rank), key=lambda i: rank[self.labels[i]])
                rest = [i for i in idxs if self.labels[i] not in rank]
            else:
                first, rest = [], list(idxs)
            self._plans.append((rule, first, rest))
        self._cap = [float(c) for c in self.capacity]
        self._m = self.m.tolist()
        self._rep = self.repeat.tolist()
        self._ext = (self.alpha * self.m).tolist()
        self._edges = [(i, j, (1 - self.repeat[i]) * p * self.m[j] / self.m[i])
                       for i, targets in enumerate(self.route) for j, p in targets]

    # -- one step (plain lists: a handful of buffers, tens of thousands of steps) --------------
    def _allocate(self, w: list, inflow: list, dt: float) -> list:
        n = len(w)
        r = [0.0] * n
        avail = [w[i] / dt + inflow[i] for i in range(n)]
        for s, (rule, first, rest) in enumerate(self._plans):
            rem = self._cap[s]
            if rule.kind == "max-pressure":
                coefs = self._mp[rule.weighting]
                members = self.members[s]
                down = {i: sum(g * w[k] for k, g in coefs[i][1]) for i in members}
                p = {i: coefs[i][0] * w[i] - down[i] for i in members}
                first = sorted(members, key=lambda i: -p[i])
                if not rule.serve_nonpositive:
                    # an empty buffer with nothing downstream has positive pressure as soon as fluid arrives
                    first = [i for i in first if p[i] > 0 or (w[i] <= 0 and down[i] <= 0)]
                rest = []
            for i in first:
                x = avail[i] if avail[i] < rem else rem
                r[i] = x
                rem -= x
            if rest:
                want = sum(avail[i] for i in rest)
                share = 1.0 if want <= rem else rem / want
                for i in rest:
                    r[i] = avail[i] * share
        return r

    def _inflow(self, r: list, joined: dict) -> list:
        inflow = [self._ext[i] + self._rep[i] * r[i] for i in range(len(r))]
        for i, j, c in self._edges:
            inflow[j] += c * r[i]
        for jb, x in joined.items():
            inflow[jb] += x * self._m[jb]
        return inflow

    def integrate(self, w0: dict[str, float] | None, t_end: float, steps: int = 20_000, t0: float = 0.0,
                  relative_step: float | None = None) -> pd.DataFrame:
        """Fluid levels (tokens per label), ``total`` tokens and ``work`` (tokens of future work,
        later visits included) from ``w0`` at ``t0`` until ``t_end``.

        Fixed steps of ``(t_end - t0) / steps`` by default. With ``relative_step`` the step is that
        fraction of the time the stations need to process the fluid present (the model is
        scale-free, so this resolves the dynamics at every scale; at most ``steps`` steps, and the
        run stops early once the fluid is below 1e-4 of where it started).
        """
        if not t_end > t0:
            raise ValueError(f"t_end must be after t0 ({t_end} <= {t0})")
        n = len(self.labels)
        w = [0.0] * n
        for lab, x in (w0 or {}).items():
            if lab not in self.labels:
                raise ValueError(f"unknown label {lab!r} in the initial fluid; labels: {', '.join(self.labels)}")
            w[self.labels.index(lab)] = max(float(x), 0.0)
        cap = sum(self._cap)
        fixed = (t_end - t0) / steps
        floor = 1e-4 * max(sum(w), cap * fixed)
        m, rep = self._m, self._rep
        completed = [0.0] * n            # cumulative step completions (visits that did not repeat)
        released = {jb: 0.0 for jb, _ in self.joins}
        joined = {jb: 0.0 for jb, _ in self.joins}
        inflow = list(self._ext)
        times, rows = [t0], [list(w)]
        t = t0
        for _ in range(steps):
            if t >= t_end:
                break
            dt = fixed if relative_step is None else max(relative_step * sum(w) / cap, fixed * 1e-3)
            dt = min(dt, t_end - t)
            for _ in range(2):             # settle this step's inflows (upstream rates) once
                r = self._allocate(w, inflow, dt)
                inflow = self._inflow(r, joined)
            for i in range(n):
                completed[i] += dt * (1 - rep[i]) * r[i] / m[i]
            for jb, branches in self.joins:
                new = min(completed[b] for b in branches)
                joined[jb] = (new - released[jb]) / dt
                released[jb] = new
            inflow = self._inflow(r, joined)
            w = [max(w[i] + dt * (inflow[i] - r[i]), 0.0) for i in range(n)]
            t += dt
            times.append(t)
            rows.append(w)
            if relative_step is not None and sum(w) < floor:
                break
        arr = np.array(rows)
        df = pd.DataFrame(arr, columns=self.labels)
        df.insert(0, "time", times)
        df["total"] = arr.sum(axis=1)
        df["work"] = arr @ self.work_per_token
        return df


@dataclass
class FluidVerdict:
    """What the fluid model predicts for a network's rules."""

    verdict: str                          # "drains" | "diverges" | "undecided"
    horizon_s: float
    unit_tokens: float
    cases: dict[str, dict] = field(default_factory=dict)   # initial buffer -> outcome

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "horizon_s": self.horizon_s, "unit_tokens": self.unit_tokens,
                "cases": self.cases}


def _classify(df: pd.DataFrame) -> dict:
    """drains / diverges / undecided for one trajectory (see :func:`fluid_verdict`)."""
    u = df["work"].to_numpy()
    t = df["time"].to_numpy()
    u0 = u[0]
    if u[-1] < 0.05 * u0:
        return {"outcome": "drains", "drain_time_s": float(t[np.nonzero(u < 0.05 * u0)[0][0]])}
    late = t >= t[-1] / 2
    growth = float(np.polyfit(t[late], u[late], 1)[0]) if late.sum() > 2 else 0.0
    out: dict[str, Any] = {"final_work_ratio": float(u[-1] / u0), "growth_tokens_per_s": growth}
    if u[-1] > 2 * u0 and growth > 0:
        out["outcome"] = "diverges"
    elif u[-1] < 0.25 * u0 and growth < 0:
        out["outcome"] = "drains"        # the step budget ran out while it was still falling
    else:
        out["outcome"] = "undecided"
    return out


def fluid_verdict(net: Network, rules: dict[str, StationRule] | None = None, horizon_units: float = 40.0,
                  steps: int = 20_000, relative_step: float = 0.03) -> FluidVerdict:
    """Start from one unit of fluid in each buffer in turn and say whether the total drains.

    A unit is what the slowest station processes in 1000 s; the horizon is ``horizon_units``
    times the time the whole network would need to drain one unit with its spare capacity.
    A network with a prefill/decode split is refused (ValueError): its buffers are not modelled.

    The measure is the fluid's future work (tokens, later visits included), which a stable rule
    wears down at the network's spare capacity; the token fluid itself may first grow (a short
    visit turns into a long one downstream). ``drains``: the work falls below 5% of where it
    started (or below 25% and still falling when the step budget runs out); ``diverges``: it
    ends above twice its start and still grows over the second half of the horizon; otherwise
    ``undecided`` (raise ``horizon_units`` or ``steps``).
    """
    if net.disaggregation is not None:
        raise ValueError("the fluid model has no prefill/decode split (disaggregation)")
    model = FluidModel(net, rules)
    cap = float(model.capacity.min())
    unit = cap * 1000.0
    load = np.zeros(len(model.capacity))
    for sl in step_loads(net):
        load[model.station_names.index(sl.target)] += sl.tokens_per_s
    slack = float(np.min(model.capacity - load))
    if slack <= 0:
        return FluidVerdict("diverges", 0.0, unit, {"*": {"outcome": "diverges", "reason": "some rho_k >= 1"}})
    horizon = horizon_units * unit / slack
    cases, outcomes = {}, []
    for lab in model.labels:
        cases[lab] = _classify(model.integrate({lab: unit}, horizon, steps, relative_step=relative_step))
        outcomes.append(cases[lab]["outcome"])
    verdict = "diverges" if "diverges" in outcomes else ("drains" if all(o == "drains" for o in outcomes)
                                                         else "undecided")
    return FluidVerdict(verdict, horizon, unit, cases)
