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

from dataclasses import asdict, dataclass

import numpy as np

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
    """t(b) for a fractional mean load: a staircase taken linearly (c + a b / b0), others as they are."""
    if isinstance(bt, StaircaseBatchTime):
        return bt.c + bt.a * max(b, 1.0) / bt.b0
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
    m = m_p + m_d
    if m <= 0:
        raise ValueError("the workload has no tokens (mean prompt + mean decode is 0)")
    eg = mean_kv_token_iterations(prompt, decode, block_size)
    b_max = policy.token_budget
    lam_c = peak_token_rate(bt, b_max, m_p, m_d) / m
    b_mem = kv_capacity_tokens * m / eg
    t_bar = smooth_batch_time(bt, min(b_mem, b_max)) if b_mem < b_max else bt.load_time(b_max)
    lam_m = kv_capacity_tokens / (t_bar * eg)
    cap = min(lam_m, lam_c)
    rho = arrival_rate / cap if arrival_rate is not None else None
    return MemoryCapacity(kv_capacity_tokens, block_size, m_p, m_d, eg, b_mem, t_bar, lam_m, lam_c,
                          cap, "memory" if lam_m < lam_c else "compute", arrival_rate, rho)
