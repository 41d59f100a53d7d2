"""Capacity theory of a prefill/decode split: how many of N GPUs should prefill, how many decode.

A request brings ``p`` prompt tokens (mean) to the prefill pool and ``d`` decode tokens to the
decode pool. One prefill engine processes ``mu_p`` prompt tokens per second: its full-batch
capacity ``b_max / t(b_max)`` (Theorem 2, :attr:`NetEngine.capacity`). One decode engine runs
batches of ``n`` decodes, ``n / t(n)`` tokens per second, where ``n`` is the smallest of its
token budget (and ``max_batch_size``), the requests its KV memory holds (a decoding request holds
its prompt plus half its answer on average: ``capacity / (p + d / 2)``), and, under a TPOT SLO,
the largest batch whose iteration meets it (``t(n) <= TPOT``). A link of ``bandwidth`` bytes/s
per prefill engine carries ``p * kv_bytes_per_token`` bytes per request.

The largest request rate ``lambda`` of a split (P prefill, D decode engines, P + D = N) is the
linear program (HiGHS)

    maximise lambda  subject to  lambda * p <= mu_p * P,   lambda * d <= mu_d * D,
                                 lambda * p * bytes <= bandwidth * P,   P + D = N,   P, D >= 1

solved with P, D continuous (the ideal ratio) and integer (the best split of N GPUs).
:func:`colocated_rate` is the same bound for N colocated Sarathi engines (chunked prefill) whose
token budget is cut so that an iteration meets the TPOT SLO: the comparison of DistServe.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.optimize import linprog

from ..errors import SolverError
from ..workload.arrivals import ArrivalProcess
from ..workload.lengths import LengthDistribution
from .model import Disaggregation, JobClass, KVLink, NetEngine, Network, replicas
from .workflow import Step, Workflow


@dataclass(frozen=True)
class PoolRates:
    """Tokens per second of one prefill and one decode engine, and what limits the decode batch."""

    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    decode_batch: int
    decode_limit: str                # "budget", "memory" or "tpot"

    def to_dict(self) -> dict:
        return asdict(self)


def _largest_meeting(t, top: int, slo_s: float) -> int:
    """The largest n in 1..top with t(n) <= slo_s (0 if even n = 1 misses it); t nondecreasing."""
    lo, hi = 0, top
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if t(mid) <= slo_s:
            lo = mid
        else:
            hi = mid - 1
    return lo


def decode_batch_limit(engine: NetEngine, mean_prompt: float, mean_decode: float,
                       tpot_slo_s: float | None = None) -> tuple[int, str]:
    """The decode batch ``n`` of one decode engine and what bounds it (module docstring)."""
    pol, bt = engine.policy, engine.batch_time
    n, why = pol.token_budget, "budget"
    if pol.max_batch_size is not None and pol.max_batch_size < n:
        n = pol.max_batch_size
    ctx = mean_prompt + mean_decode / 2
    if engine.memory is not None:
        n_mem = max(1, int(engine.memory.num_blocks * engine.memory.block_size // max(ctx, 1.0)))
        if n_mem < n:
            n, why = n_mem, "memory"
    if tpot_slo_s is not None:
        n_slo = _largest_meeting(lambda k: bt.duration(0, k, int(k * ctx)), n, tpot_slo_s)
        if n_slo < n:
            n, why = n_slo, "tpot"
    return n, why


def pool_rates(prefill: NetEngine, decode: NetEngine, mean_prompt: float, mean_decode: float,
               tpot_slo_s: float | None = None) -> PoolRates:
    """``mu_p`` and ``mu_d`` of the module docstring (tokens/s)."""
    n, why = decode_batch_limit(decode, mean_prompt, mean_decode, tpot_slo_s)
    if n == 0:
        return PoolRates(prefill.capacity, 0.0, 0, why)
    ctx = int(n * (mean_prompt + mean_decode / 2))
    return PoolRates(prefill.capacity, n / decode.batch_time.duration(0, n, ctx), n, why)


@dataclass(frozen=True)
class PDSplit:
    """The LP's answer for ``gpus`` GPUs: the ideal (continuous) prefill share, the best integer
    split and its request rate, and which constraint binds."""

    gpus: int
    prefill_continuous: float
    rate_continuous: float
    prefill: int
    decode: int
    rate: float
    bottleneck: str                  # "prefill", "decode", "link" or "both"
    rates: PoolRates

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rates"] = self.rates.to_dict()
        return d


def pd_split_lp(gpus: int, rates: PoolRates, mean_prompt: float, mean_decode: float, *,
                link_bytes_per_s: float | None = None, kv_bytes_per_token: float = 0.0) -> PDSplit:
    """Solve the module docstring's LP for ``gpus`` engines (at least 2)."""
    if not isinstance(gpus, int) or gpus < 2:
        raise ValueError(f"a prefill/decode split needs at least 2 engines, got {gpus!r}")
    if not (mean_prompt > 0 and mean_decode > 0):
        raise ValueError("a prefill/decode split needs mean prompt and decode tokens > 0")
    mu_p, mu_d = rates.prefill_tokens_per_s, rates.decode_tokens_per_s
    # variables (lambda, P, D); maximise lambda
    c = np.array([-1.0, 0.0, 0.0])
    a_ub = [[mean_prompt, -mu_p, 0.0], [mean_decode, 0.0, -mu_d]]
    if link_bytes_per_s is not None and kv_bytes_per_token > 0:
        a_ub.append([mean_prompt * kv_bytes_per_token, -link_bytes_per_s, 0.0])
    a_eq = np.array([[0.0, 1.0, 1.0]])
    bounds = [(0, None), (1, gpus - 1), (1, gpus - 1)]
    out = []
    for integral in (False, True):
        res = linprog(c, A_ub=np.array(a_ub), b_ub=np.zeros(len(a_ub)), A_eq=a_eq, b_eq=[float(gpus)],
                      bounds=bounds, method="highs", integrality=[0, 1, 1] if integral else None)
        if not res.success:
            raise SolverError(f"P:D split LP failed: {res.message}")
        out.append(res.x)
    cont, best = out
    lam, p_eng = float(best[0]), int(round(best[1]))
    p_cap, d_cap = mu_p * p_eng / mean_prompt, mu_d * (gpus - p_eng) / mean_decode
    link_cap = (link_bytes_per_s * p_eng / (mean_prompt * kv_bytes_per_token)
                if link_bytes_per_s is not None and kv_bytes_per_token > 0 else math.inf)
    caps = {"prefill": p_cap, "decode": d_cap, "link": link_cap}
    tight = [k for k, v in caps.items() if v <= lam * (1 + 1e-9)]
    return PDSplit(gpus, float(cont[1]), float(cont[0]), p_eng, gpus - p_eng, lam,
                   "both" if len(tight) > 1 else (tight[0] if tight else "prefill"), rates)


def colocated_rate(engine: NetEngine, gpus: int, mean_prompt: float, mean_decode: float,
                   tpot_slo_s: float | None = None) -> tuple[float, int]:
    """``(requests/s, token budget)`` of ``gpus`` colocated engines: each at ``b / t(b)`` tokens/s
    with the largest budget ``b`` (at most the engine's) whose full iteration meets the TPOT SLO."""
    b = budget_for_tpot(engine, tpot_slo_s)
    if b == 0:
        return 0.0, 0
    from ..analysis.theory import peak_token_rate
    return gpus * peak_token_rate(engine.batch_time, b) / (mean_prompt + mean_decode), b


def budget_for_tpot(engine: NetEngine, tpot_slo_s: float | None) -> int:
    """The largest token budget (at most the engine's) whose full iteration takes <= the SLO."""
    top = engine.policy.token_budget
    if tpot_slo_s is None:
        return top
    return _largest_meeting(lambda b: engine.batch_time.load_time(b) if engine.batch_time.load_only
                            else engine.batch_time.duration(b, 0, b), top, tpot_slo_s)


def disaggregated_network(prefill: NetEngine, decode: NetEngine, n_prefill: int, n_decode: int,
                          arrival: ArrivalProcess, prompt_tokens: LengthDistribution,
                          decode_tokens: LengthDistribution, *, link: KVLink, kv_bytes_per_token: float,
                          router: str = "least_tokens", name: str = "chat") -> Network:
    """``n_prefill`` copies of ``prefill`` and ``n_decode`` of ``decode`` behind routers named
    ``prefill`` and ``decode``, one job class of one step addressed to the prefill pool."""
    pe, pr = replicas(replace(prefill, name="prefill"), n_prefill, router)
    de, dr = replicas(replace(decode, name="decode"), n_decode, router)
    cls = JobClass(name, arrival, Workflow.chain(Step("prefill", prompt_tokens, decode_tokens, "llm")))
    return Network((*pe, *de), (cls,), (pr, dr), Disaggregation("prefill", "decode", link, kv_bytes_per_token))


def colocated_network(engine: NetEngine, n: int, arrival: ArrivalProcess, prompt_tokens: LengthDistribution,
                      decode_tokens: LengthDistribution, *, router: str = "least_tokens",
                      name: str = "chat") -> Network:
    """``n`` copies of ``engine`` behind a router named ``engine``; one class of one step."""
    es, r = replicas(replace(engine, name="engine"), n, router)
    cls = JobClass(name, arrival, Workflow.chain(Step("engine", prompt_tokens, decode_tokens, "llm")))
    return Network(es, (cls,), (r,))
