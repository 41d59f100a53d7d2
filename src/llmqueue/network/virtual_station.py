"""The classical virtual-station condition of the two-engine Rybko-Stolyar network, in closed form.

Shape: two stations (engines or routers) 1 and 2; class A visits 1 then 2, class B visits 2
then 1, once each (no repeats, no routing). Call A2 and B2 the exiting visits. Under strict
priority to the exiting visits at both stations, A2 and B2 are never served at the same time
in the fluid limit (while station 2 serves A2 first, B1 starves and B2 gets no input, and vice
versa), so they behave like one "virtual station" whose load must be below 1:

    rho_v = lambda_A * m_A2 / c_2 + lambda_B * m_B2 / c_1 < 1

(m: mean tokens of a visit, c: station capacity in tokens/s). Together with rho_1, rho_2 < 1
this is necessary and sufficient for the fluid model under that priority (Rybko and Stolyar
1992; Botvich and Zamyatin 1992). With priority to the entering visits there is no virtual
station; rho_k < 1 suffices (our fluid integration agrees). For spec section 5:
m_A2 = m_B2 = 544, c = 768, so rho_v = 2 * 544 * lambda / 768 = (1088 / 608) rho: the exit
priority diverges for every rho > 608 / 1088 = 0.559, rho = 0.9 included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..policies.priority import ClassPriority
from .model import Network


@dataclass(frozen=True)
class VirtualStation:
    stations: tuple[str, str]
    exit_labels: tuple[str, str]          # (A2 at station 2, B2 at station 1)
    entry_labels: tuple[str, str]         # (A1 at station 1, B1 at station 2)
    rho_v: float
    exit_scale_limit: float               # largest common scale of the rates at which the exit priority is stable
    priority: str                         # "exit" | "entry" | "other"
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def _capacity(net: Network, target: str) -> float:
    return sum(net.engine(e).capacity for e in net.members(target))


def _priority(net: Network, target: str, first: str, second: str) -> str | None:
    """'first' / 'second' if every engine of the station ranks that label above the other."""
    ranks = set()
    for e in net.members(target):
        pol = net.engine(e).policy
        if not isinstance(pol, ClassPriority):
            return None
        order = list(pol.class_order)
        if first not in order and second not in order:
            return None
        pos = {lab: (order.index(lab) if lab in order else len(order)) for lab in (first, second)}
        ranks.add("first" if pos[first] < pos[second] else "second")
    return ranks.pop() if len(ranks) == 1 else None


def rybko_stolyar(net: Network) -> VirtualStation | None:
    """The virtual-station analysis if ``net`` has the Rybko-Stolyar shape, else None."""
    if len(net.classes) != 2:
        return None
    shapes = []
    for c in net.classes:
        wf = c.workflow
        s = wf.steps
        if wf.kind != "dag" or len(s) != 2 or any(x.repeat for x in s) or s[1].after != (s[0].name,):
            return None
        shapes.append((c, s[0], s[1]))
    (ca, a1, a2), (cb, b1, b2) = shapes
    st1, st2 = a1.engine, a2.engine
    if st1 == st2 or b1.engine != st2 or b2.engine != st1:
        return None
    c1, c2 = _capacity(net, st1), _capacity(net, st2)
    rho_v = ca.rate * a2.mean_tokens / c2 + cb.rate * b2.mean_tokens / c1
    rho1 = (ca.rate * a1.mean_tokens + cb.rate * b2.mean_tokens) / c1
    rho2 = (cb.rate * b1.mean_tokens + ca.rate * a2.mean_tokens) / c2
    p1 = _priority(net, st1, b2.buffer, a1.buffer)      # station 1: exit B2 vs entering A1
    p2 = _priority(net, st2, a2.buffer, b1.buffer)
    prio = "exit" if p1 == p2 == "first" else ("entry" if p1 == p2 == "second" else "other")
    scale = 1.0 / max(rho_v, rho1, rho2)
    if prio == "exit":
        verdict = (f"priority to the exiting visits ({a2.label}, {b2.label}): virtual station load rho_v = "
                   f"{rho_v:.4f}; " + ("unstable: rho_v > 1 although every rho_k < 1" if rho_v > 1 and
                                       max(rho1, rho2) < 1 else ("stable (fluid model)" if rho_v < 1 and
                                                                 max(rho1, rho2) < 1 else "unstable")))
    elif prio == "entry":
        verdict = (f"priority to the entering visits ({a1.label}, {b1.label}): no virtual station; "
                   + ("stable (fluid model), as every rho_k < 1" if max(rho1, rho2) < 1
                      else "unstable: some rho_k >= 1"))
    else:
        verdict = (f"not a strict priority between entering and exiting visits at both stations; under the "
                   f"exit priority rho_v would be {rho_v:.4f}")
    return VirtualStation((st1, st2), (a2.buffer, b2.buffer), (a1.buffer, b1.buffer), rho_v, scale, prio, verdict)
