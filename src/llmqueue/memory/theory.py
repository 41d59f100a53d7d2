"""Memory-aware capacity: the KV-memory stability threshold next to Theorem 2's compute bound.

A request with prompt s and output o holds KV memory over its life; g(s, o) is the total in
token-iterations, counting block rounding: one prefill iteration holding ceil_B(s), then o
decode iterations holding ceil_B(s + k), k = 1..o (ceil_B rounds up to whole blocks of B). By
Little's law the mean KV in use is lambda * t_bar * E[g], and it cannot exceed the capacity M:
``lambda_mem = M / (t_bar * E[g])`` (spec section 6, after Nie, Si and Zhou). The representative
batch time t_bar is that of the batch a full memory feeds: the memory holds
M / (E[g] / (m_p + m_d)) tokens' worth of requests, so a batch carries
``b_mem = M * (m_p + m_d) / E[g]`` tokens per iteration, capped at the budget b_max, and
``t_bar = t(min(b_mem, b_max))`` with the batch-time curve taken linearly between steps (the
mean of a staircase over loads that fluctuate). The binding resource is the smaller rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..analysis.theory import CapacityReport
from ..engine.batch_time import BatchTimeModel, StaircaseBatchTime
from ..policies.base import Policy
from ..workload.lengths import LengthDistribution


def _sum_ceil(n: np.ndarray, b: int) -> np.ndarray:
    """sum_{x=1..n} ceil(x / b), elementwise."""
    q, r = np.divmod(n, b)
    return b * q * (q + 1) // 2 + r * (q + 1)


def kv_token_iterations(prompt, output, block_size: int = 1) -> np.ndarray:
    """g(s, o): KV token-iterations a request holds (block-rounded), for arrays of s and o."""
    s = np.asarray(prompt, dtype=np.int64)
    o = np.asarray(output, dtype=np.int64)
    b = int(block_size)
    prefill = np.where(s > 0, -(-s // b) * b, 0)
    decode = b * (_sum_ceil(s + o, b) - _sum_ceil(s, b))
    return prefill + decode


def mean_kv_token_iterations(prompt: LengthDistribution, decode: LengthDistribution,
                             block_size: int = 16, samples: int = 200_000, seed: int = 0) -> float:
    """E[g(s, o)] for independent prompt and decode lengths (exact for fixed lengths, else a
    seeded Monte Carlo mean over ``samples`` draws, so it is deterministic)."""
    rng = np.random.default_rng(seed)
    n = 1 if (prompt.max_value == prompt.min_value and decode.max_value == decode.min_value) else samples
    return float(kv_token_iterations(prompt.sample(rng, n), decode.sample(rng, n), block_size).mean())


def smooth_batch_time(bt: BatchTimeModel, b: float) -> float:
    """t(b) for a fractional mean load: a staircase taken linearly between its steps,
    c + a max(1, b / b0) (any load below one step pays the whole first step), others as they are."""
    if isinstance(bt, StaircaseBatchTime):
        return bt.c + bt.a * max(b / bt.b0, 1.0)
    return bt.load_time(max(1, int(round(b))))


@dataclass
class MemoryCapacity:
    """Both bounds, in requests/s, and which one binds."""

    kv_capacity_tokens: int
    block_size: int
    mean_prompt_tokens: float
    mean_decode_tokens: float
    mean_kv_token_iterations: float     # E[g]
    batch_tokens_at_full_memory: float  # b_mem
    t_bar_s: float
    lambda_memory: float
    lambda_compute: float
    capacity: float
    binding: str                        # "memory" | "compute"
    arrival_rate: float | None = None
    rho: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        b = self.binding
        out = [
            f"E[g] = {self.mean_kv_token_iterations:.6g} KV token-iterations per request "
            f"(blocks of {self.block_size})",
            f"batch at full memory: b_mem = M (m_p + m_d) / E[g] = {self.kv_capacity_tokens} x "
            f"{self.mean_prompt_tokens + self.mean_decode_tokens:.6g} / {self.mean_kv_token_iterations:.6g} = "
            f"{self.batch_tokens_at_full_memory:.6g} tokens; t_bar = {self.t_bar_s * 1e3:.6g} ms",
            f"memory bound: lambda_mem = M / (t_bar E[g]) = {self.lambda_memory:.6g} requests/s",
            f"compute bound (Theorem 2): lambda* = {self.lambda_compute:.6g} requests/s",
            f"binding resource: {b}; maximum stable rate {self.capacity:.6g} requests/s",
        ]
        if self.rho is not None:
            out.append(f"load against it: rho = {self.rho:.4f} ({'unstable' if self.rho >= 1 else 'stable'})")
        return out


def memory_capacity(policy: Policy, bt: BatchTimeModel, kv_capacity_tokens: int, block_size: int,
                    prompt: LengthDistribution, decode: LengthDistribution,
                    arrival_rate: float | None = None) -> MemoryCapacity:
    """The memory and compute bounds of one engine for i.i.d. prompt and decode lengths."""
    from ..analysis.theory import peak_token_rate
    m_p, m_d = float(prompt.mean), float(decode.mean)
    if m_p + m_d <= 0:
        raise ValueError("the workload has no tokens (mean prompt + mean decode is 0)")
    eg = mean_kv_token_iterations(prompt, decode, block_size)
    return _bounds(policy, bt, kv_capacity_tokens, block_size, m_p, m_d, eg, arrival_rate, peak_token_rate)


def _bounds(policy: Policy, bt: BatchTimeModel, kv_capacity_tokens: int, block_size: int, m_p: float,
            m_d: float, eg: float, arrival_rate: float | None, peak_token_rate: Any) -> MemoryCapacity:
    """Both bounds from the mean lengths and E[g] (module docstring)."""
    m = m_p + m_d
    b_max = policy.token_budget
    lam_c = peak_token_rate(bt, b_max, m_p, m_d) / m
    b_mem = kv_capacity_tokens * m / eg
    t_bar = smooth_batch_time(bt, min(b_mem, b_max)) if b_mem < b_max else bt.load_time(b_max)
    lam_m = kv_capacity_tokens / (t_bar * eg)
    cap = min(lam_m, lam_c)
    rho = arrival_rate / cap if arrival_rate is not None else None
    return MemoryCapacity(kv_capacity_tokens, block_size, m_p, m_d, eg, b_mem, t_bar, lam_m, lam_c,
                          cap, "memory" if lam_m < lam_c else "compute", arrival_rate, rho)

#: requests of a workload sampled to measure its prefix-cache hit rate and its KV footprint
SAMPLE_REQUESTS = 20_000


def _sample(workload: Any, seed: int, n: int = SAMPLE_REQUESTS) -> Any | None:
    """The first ``n`` arriving requests of ``workload`` as columns (initial ones excluded), or None."""
    batches = workload.requests(seed).array_batches(n)
    if batches is None:
        return None
    n0 = len(workload.initial)
    for block in batches:
        # the first block holds the initial requests first
        return block.slice(min(n0, len(block)), len(block)) if n0 else block
    return None


def prefix_hit_rate(arrays: Any, block_size: int) -> float:
    """Fraction of prompt tokens the prefix cache serves, measured on requests in arrival order
    with an unbounded cache: the first request of a prefix computes it, every later one reuses
    its whole blocks (at most prompt - 1 tokens, as the KV manager's hit rule)."""
    if arrays is None or len(arrays) == 0 or arrays.prefix_id is None:
        return 0.0
    prompts = arrays.prompt_tokens.astype(np.int64)
    total = int(prompts.sum())
    if total <= 0:
        return 0.0
    seen: set = set()
    hit = 0
    for pid, ptok, s in zip(arrays.prefix_id.tolist(), arrays.prefix_tokens.tolist(), prompts.tolist()):
        if pid is None:
            continue
        if pid in seen:
            hit += (min(int(ptok), s - 1) // block_size) * block_size
        else:
            seen.add(pid)
    return hit / total


@dataclass
class CombinedCapacity:
    """Every bound ``llmqueue capacity`` knows, combined: Theorem 2's compute bound (with the
    prompt tokens the prefix cache serves taken out of the prefill work) and the KV-memory bound;
    lambda* and the verdict are those of the binding (smaller) one."""

    compute: CapacityReport
    memory: MemoryCapacity | None
    lambda_star: float
    binding: str                        # "compute" | "memory"
    prefix_hit_rate: float
    prefix_hit_source: str | None       # how the hit rate was obtained (None: no prefix caching)
    arrival_rate: float | None
    rho: float | None
    stable: str | None
    verdict: list[str]

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("compute", "memory")}
        d["compute"] = self.compute.to_dict()
        d["memory"] = self.memory.to_dict() if self.memory is not None else None
        return d


def combined_capacity(policy: Policy, bt: BatchTimeModel, workload: Any, memory: Any = None,
                      seed: int = 0) -> CombinedCapacity | None:
    """lambda* and the verdict of one engine over every bound: compute (Theorem 2) and KV memory
    (``memory``: a :class:`~llmqueue.memory.config.MemoryConfig`, or None), with prefix-cache hits
    (measured on the workload's requests, :func:`prefix_hit_rate`) lowering the prefill work.
    None when the workload has no arriving requests."""
    from ..analysis.theory import capacity_report
    m_p, m_d = workload.mean_prompt_tokens, workload.mean_decode_tokens
    if m_p + m_d <= 0:
        return None
    rate = workload.arrival_rate if 0 < workload.arrival_rate < float("inf") else None
    caching = memory is not None and memory.prefix_caching
    sample = _sample(workload, seed) if caching or (memory is not None and workload.trace is not None) else None
    hit = prefix_hit_rate(sample, memory.block_size) if caching else 0.0
    source = None
    if caching:
        kind = "trace" if workload.trace is not None else "generated workload"
        source = (f"measured on the first {len(sample) if sample is not None else 0} requests of the {kind} "
                  f"(seed {seed}): every request after the first of its prefix reuses the prefix's whole "
                  f"blocks (an unbounded cache, so an upper bound on the hits)")
    comp = capacity_report(policy, bt, m_p * (1 - hit), m_d, rate, workload.max_prompt_tokens)
    mem = None
    if memory is not None:
        if workload.prompt_tokens is not None and workload.decode_tokens is not None:
            mem = memory_capacity(policy, bt, memory.capacity_tokens, memory.block_size,
                                  workload.prompt_tokens, workload.decode_tokens, rate)
        elif sample is not None and len(sample):
            mem = _memory_capacity_of(policy, bt, memory.capacity_tokens, memory.block_size,
                                      sample.prompt_tokens, sample.decode_tokens, rate)
    lam_c = comp.lambda_star
    lam_m = mem.lambda_memory if mem is not None else math.inf
    binding = "memory" if lam_m < lam_c else "compute"
    lam = min(lam_c, lam_m)
    rho = rate / lam if rate is not None else None
    v: list[str] = []
    if caching:
        v.append(f"prefix cache: hit rate {hit:.1%} of prompt tokens ({source}); the compute bound counts "
                 f"only the prefill tokens the cache does not serve (mean {m_p * (1 - hit):.6g} of {m_p:.6g})")
    v.append(f"compute bound (Theorem 2): lambda* = {lam_c:.6g} requests/s")
    if mem is not None:
        v.append(f"KV-memory bound: lambda_mem = {lam_m:.6g} requests/s"
                 + (" (shared prefix blocks counted in full for every request: conservative)" if caching else ""))
    elif memory is not None:
        v.append("KV-memory bound not computed (no length distributions or sampled requests)")
    v.append(f"binding: {binding}; lambda* = {lam:.6g} requests/s")
    stable = comp.stable
    if rho is not None:
        if rho >= 1 and (binding == "memory" or comp.max_batch_size is None):
            stable = "unstable"
            v.append(f"rho = {rho:.4f} >= 1 against the {binding} bound: unstable (the backlog grows).")
        elif binding == "memory" and stable == "stable":
            v.append(f"rho = {rho:.4f} < 1 against the memory bound: stable.")
    return CombinedCapacity(comp, mem, lam, binding, hit, source, rate, rho, stable, v)


def _memory_capacity_of(policy: Policy, bt: BatchTimeModel, kv_capacity_tokens: int, block_size: int,
                        prompts: np.ndarray, decodes: np.ndarray, arrival_rate: float | None) -> MemoryCapacity:
    """:func:`memory_capacity` for sampled lengths (a replayed trace): E[g] is the sample mean."""
    from ..analysis.theory import peak_token_rate
    m_p, m_d = float(np.mean(prompts)), float(np.mean(decodes))
    eg = float(kv_token_iterations(prompts, decodes, block_size).mean())
    return _bounds(policy, bt, kv_capacity_tokens, block_size, m_p, m_d, eg, arrival_rate, peak_token_rate)
