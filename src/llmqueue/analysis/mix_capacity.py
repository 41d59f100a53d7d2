"""Capacity when the batch time depends on the batch's composition, not only its token load.

Theorem 2's ``lambda* = b_max / (t(b_max) (m_p + m_d))`` assumes t depends on the load b only.
With a composition-dependent t (prefill tokens, decode requests, their KV context: a real GPU's
:class:`~llmqueue.engine.gpu_profile.GpuProfileBatchTime`, or the affine model), the capacity
follows from the batch the policy forms in steady state at saturation:

- **mixing policies** (Sarathi-Serve, Orca: decodes and prefill chunks in one batch): at
  saturation every batch is full, and since every token that arrives is processed, batches
  carry prefill and decode tokens in the ratio in which they arrive, m_p : m_d. A batch holds
  ``n_d = min(b_max m_d / (m_p + m_d), k_max)`` decodes and ``x = n_d m_p / m_d`` prefill
  tokens; a request needs ``m_d / n_d`` such batches (one per decode token), so
  ``lambda* = n_d / (m_d t(x, n_d, C))`` with ``C`` the batch's KV context: each decode holds
  its request's mean context over its decode steps, ``E[d (p + (d + 1) / 2)] / E[d]``
  (length-biased: long outputs are in more batches), the prefill part one prompt's worth.
  For a load-only t with ``k_max`` not binding this is Theorem 2's lambda* exactly.
- **non-mixing policies** (vLLM's prefill-first, FasterTransformer): a request costs its
  share of full prefill batches, ``m_p t(b_max, 0) / b_max``, plus ``m_d`` decode steps in
  decode batches of at most ``n = min(b_max, k_max)`` decodes, ``t(0, n, C) / n`` each; the
  rate at which this time per request fills the engine, ``1 / (m_p t_p / b_max + m_d t_d / n)``,
  is an upper bound (decode batches are rarely full), not a guarantee of stability (paper Fig. 1).

The planner (:mod:`llmqueue.lab.plan`) uses these as the upper end of its goodput search.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..engine.batch_time import BatchTimeModel
from ..policies.base import Policy

#: Policies that put prefill chunks and decodes in one batch.
MIXING = ("SarathiServe", "Orca", "VLLMV1")


def decode_context(prompts, decodes) -> float:
    """Mean KV context of a decode token: E[d (p + (d + 1) / 2)] / E[d] over paired samples."""
    p = np.asarray(prompts, dtype=float)
    d = np.asarray(decodes, dtype=float)
    if d.sum() <= 0:
        return float(p.mean()) if p.size else 0.0
    return float((d * (p + (d + 1) / 2)).sum() / d.sum())


@dataclass
class MixCapacity:
    """lambda* of one engine with a composition-dependent batch time, and the batch behind it."""

    policy: str
    kind: str                     # "mixing" (a steady-state value) or "upper bound" (non-mixing)
    lambda_star: float            # requests/s
    prefill_tokens: float         # the steady-state (or bounding) batches
    decodes: float
    context_tokens: float
    batch_time_s: float
    decode_batch_time_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _t(bt: BatchTimeModel, prefill: float, decodes: float, ctx_per_decode: float, m_p: float) -> float:
    p, d = int(round(prefill)), int(round(decodes))
    if p + d == 0:
        d = 1
    context = int(round(d * ctx_per_decode + (min(m_p, p) if p > 0 else 0)))
    return bt.duration(p, d, context)


def mix_lambda_star(policy: Policy, bt: BatchTimeModel, mean_prompt: float, mean_decode: float,
                    ctx_per_decode: float | None = None) -> MixCapacity:
    """lambda* of ``policy`` on ``bt`` for a workload with these mean lengths (module docstring).
    ``ctx_per_decode``: the mean KV context of a decode token (default m_p + (m_d + 1) / 2, exact
    for fixed lengths; :func:`decode_context` for sampled lengths)."""
    m_p, m_d = float(mean_prompt), float(mean_decode)
    if m_p < 0 or m_d < 0 or m_p + m_d <= 0:
        raise ValueError("the workload has no tokens (mean prompt + mean decode is 0)")
    b = policy.token_budget
    k = policy.max_batch_size if policy.max_batch_size is not None else math.inf
    ctx = m_p + (m_d + 1) / 2 if ctx_per_decode is None else float(ctx_per_decode)
    name = type(policy).__name__
    if m_d == 0:                                   # prefill only: full prefill batches
        t = _t(bt, b, 0, ctx, m_p)
        return MixCapacity(name, "mixing", b / (m_p * t), b, 0, m_p, t)
    if name in MIXING:
        n_d = min(b * m_d / (m_p + m_d), k)
        x = n_d * m_p / m_d
        t = _t(bt, x, n_d, ctx, m_p)
        return MixCapacity(name, "mixing", n_d / (m_d * t), x, n_d, n_d * ctx + min(m_p, x), t)
    n = min(b, k)
    t_d = _t(bt, 0, n, ctx, m_p)
    t_p = _t(bt, b, 0, ctx, m_p) if m_p > 0 else 0.0
    per_request = m_p * t_p / b + m_d * t_d / n
    return MixCapacity(name, "upper bound", 1.0 / per_request, b, n, n * ctx, t_p, t_d)


def region_scale(bt: BatchTimeModel, b_max: int, k_max: int, lam_p: float, lam_d: float) -> float:
    """Largest theta with theta * (lam_p, lam_d) in the k_max stability region of a load-only
    model: the same value as :func:`llmqueue.analysis.theory.stability_region_scale`'s linear
    program, computed geometrically. The region is the down-closure of the convex hull of the
    feasible batches' (prefill, decode) token rates; in the plane that is the hull of the batch
    points, their projections on both axes and the origin, and the ray leaves it at the first
    facet it crosses."""
    from scipy.spatial import ConvexHull
    if lam_p < 0 or lam_d < 0 or lam_p + lam_d == 0:
        raise ValueError("token arrival rates must be >= 0 and not both 0")
    b = np.arange(1, b_max + 1)
    t = np.array([bt.load_time(int(x)) for x in b])
    nd = np.minimum(k_max - 1, b - 1)
    pts = [np.column_stack([b / t, np.zeros_like(t)])]
    mix = nd > 0
    pts.append(np.column_stack([(b - nd)[mix] / t[mix], nd[mix] / t[mix]]))
    dec = b <= k_max
    pts.append(np.column_stack([np.zeros(int(dec.sum())), b[dec] / t[dec]]))
    p = np.vstack(pts)
    p = np.vstack([p, np.column_stack([p[:, 0], np.zeros(len(p))]), np.column_stack([np.zeros(len(p)), p[:, 1]]),
                   [[0.0, 0.0]]])
    v = np.array([lam_p, lam_d], dtype=float)
    if np.ptp(p[:, 1]) == 0 or np.ptp(p[:, 0]) == 0:      # degenerate (one axis only)
        along = p[:, 0].max() / lam_p if lam_d == 0 else (p[:, 1].max() / lam_d if lam_p == 0 else 0.0)
        return float(along)
    hull = ConvexHull(p)
    normals, offsets = hull.equations[:, :2], -hull.equations[:, 2]
    dots = normals @ v
    ok = dots > 1e-15
    return float(np.min(offsets[ok] / dots[ok]))
