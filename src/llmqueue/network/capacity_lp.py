"""The largest scaling of all arrival rates that keeps every engine's load below its capacity.

Variables: the scale theta and, for every step addressed to a load-balancing router (jsq,
least_tokens, power_of_two), the token rate x_{s,e} it sends to each of the router's engines.
Round-robin routers split visits equally, so their shares are fixed. Maximise theta subject to

    for every engine e:        theta * (fixed load on e) + sum_s x_{s,e} <= capacity_e
    for every balanced step s: sum_e x_{s,e} = theta * load_s

(a linear program, solved with HiGHS). With fixed routing the answer is 1 / max_k rho_k; with
balancing routers over unequal engines it is where the best split runs out. The bottleneck is
the set of engines saturated at theta* (in the optimal split HiGHS returns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from ..errors import SolverError
from .model import Network
from .traffic import step_loads


@dataclass(frozen=True)
class ScalingLP:
    """theta* (the largest load scale that every engine can carry), the bottleneck engines, and
    each engine's load at theta* (tokens/s)."""

    theta: float
    bottleneck: tuple[str, ...]
    load_at_theta: dict[str, float]


def max_load_scale(net: Network) -> ScalingLP:
    """Solve the linear program of the module docstring."""
    engines = [e.name for e in net.engines]
    eidx = {n: i for i, n in enumerate(engines)}
    cap = np.array([e.capacity for e in net.engines])
    fixed = np.zeros(len(engines))
    free: list[tuple[float, list[int]]] = []         # (load, engine indices) of balanced steps
    for sl in step_loads(net):
        if sl.tokens_per_s <= 0:
            continue
        r = net.router(sl.target)
        if r is None:
            fixed[eidx[sl.target]] += sl.tokens_per_s
        elif r.rule == "round_robin":
            for e in r.engines:
                fixed[eidx[e]] += sl.tokens_per_s / len(r.engines)
        else:
            free.append((sl.tokens_per_s, [eidx[e] for e in r.engines]))
    if fixed.sum() + sum(x for x, _ in free) <= 0:
        raise ValueError("the network carries no load (every class has rate 0 or no tokens)")
    n_x = sum(len(m) for _, m in free)
    nv = 1 + n_x                                      # theta, then the x's
    c = np.zeros(nv)
    c[0] = -1.0
    a_ub = np.zeros((len(engines), nv))
    a_ub[:, 0] = fixed
    a_eq = np.zeros((len(free), nv))
    col = 1
    for k, (load, members) in enumerate(free):
        a_eq[k, 0] = -load
        for j in members:
            a_ub[j, col] = 1.0
            a_eq[k, col] = 1.0
            col += 1
    res = linprog(c, A_ub=a_ub, b_ub=cap, A_eq=a_eq if len(free) else None,
                  b_eq=np.zeros(len(free)) if len(free) else None, bounds=[(0, None)] * nv, method="highs")
    if not res.success:
        raise SolverError(f"load-scaling LP failed: {res.message}")
    theta = float(res.x[0])
    used = a_ub @ res.x
    tight = [engines[i] for i in range(len(engines)) if used[i] >= cap[i] * (1 - 1e-7)]
    return ScalingLP(theta, tuple(tight), {engines[i]: float(used[i]) for i in range(len(engines))})
