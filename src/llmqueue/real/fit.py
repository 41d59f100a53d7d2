"""Fit the batch-time models to measured iteration times, and say how well each fits.

Three models, as in :mod:`llmqueue.engine.batch_time`: the v3 staircase ``c + a ceil(b/b0)`` and
the v1/v2 piecewise linear ``c + a max(0, b - b0)`` in the token load ``b = prefill + decode``,
and the affine ``c + a_p prefill + a_d decode + a_ctx context``. Coefficients are fitted by
non-negative least squares (a negative cost per token would be meaningless, and the simulator
refuses it) on relative errors: each measurement is weighted by 1/t, because timing noise is
multiplicative and a queue is as sensitive to a 10% error on a 5 ms decode step as on a 50 ms
full batch (plain least squares would fit the big batches and let the small ones drift). The
breakpoint ``b0`` is found by search. Each fit reports the usual (unweighted) R^2 and its
residuals (RMSE, largest absolute, mean relative). No torch needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from ..engine.batch_time import AffineBatchTime, BatchTimeModel, PiecewiseLinearBatchTime, StaircaseBatchTime

FIT_NAMES = ("staircase", "piecewise_linear", "affine")


@dataclass
class Fit:
    """One fitted model: its parameters (ms, as in scenario files) and goodness of fit."""

    name: str
    params: dict
    r2: float
    rmse_ms: float
    max_abs_ms: float
    mean_rel_err: float
    residuals_ms: list[float] = field(default_factory=list, repr=False)

    def build(self) -> BatchTimeModel:
        return build_model(self.name, self.params)

    def summary(self) -> dict:
        return {"params": self.params, "r2": self.r2, "rmse_ms": self.rmse_ms,
                "max_abs_ms": self.max_abs_ms, "mean_rel_err": self.mean_rel_err}


def build_model(name: str, p: dict) -> BatchTimeModel:
    """A batch-time model from fitted parameters in ms (the keys of the scenario file specs)."""
    if name == "staircase":
        return StaircaseBatchTime(c=p["c_ms"] / 1e3, a=p["a_ms"] / 1e3, b0=int(p["b0"]))
    if name == "piecewise_linear":
        return PiecewiseLinearBatchTime(c=p["c_ms"] / 1e3, a=p["a_ms"] / 1e3, b0=int(p["b0"]))
    if name == "affine":
        return AffineBatchTime(c=p["c_ms"] / 1e3, a_prefill=p["prefill_ms"] / 1e3,
                               a_decode=p["decode_ms"] / 1e3, a_context=p["context_ms"] / 1e3)
    raise ValueError(f"unknown batch-time fit {name!r}; choose one of {', '.join(FIT_NAMES)}")


def _score(name: str, params: dict, pred: np.ndarray, t: np.ndarray) -> Fit:
    res = t - pred
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum(res ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return Fit(name=name, params=params, r2=r2, rmse_ms=float(np.sqrt(np.mean(res ** 2)) * 1e3),
               max_abs_ms=float(np.max(np.abs(res)) * 1e3), mean_rel_err=float(np.mean(np.abs(res) / t)),
               residuals_ms=(res * 1e3).tolist())


def _nnls(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative errors (rows weighted by 1/t)."""
    Xw, tw = X / t[:, None], np.ones_like(t)
    # scale columns so that NNLS is well conditioned, then undo the scaling
    scale = np.maximum(np.abs(Xw).max(axis=0), 1e-12)
    coef, _ = nnls(Xw / scale, tw)
    return coef / scale


def _positive_c(c: float, t: np.ndarray) -> float:
    """The models need c > 0; a fit that lands on 0 gets a microsecond-scale floor."""
    return max(c, 1e-6 * float(np.min(t)))


def fit_staircase(b: np.ndarray, t: np.ndarray, b0_grid=None) -> Fit:
    """c + a ceil(b / b0), b0 from powers of two up to the largest load (least relative error)."""
    if b0_grid is None:
        b0_grid = [2 ** k for k in range(0, int(np.log2(max(b.max(), 1))) + 1)]
    best: Fit | None = None
    for b0 in b0_grid:
        X = np.column_stack([np.ones_like(t), np.ceil(b / b0)])
        c, a = _nnls(X, t)
        f = _score("staircase", {"c_ms": c * 1e3, "a_ms": a * 1e3, "b0": int(b0)}, X @ [c, a], t)
        if best is None or f.mean_rel_err < best.mean_rel_err:
            best = f
    assert best is not None  # the grid is never empty
    return best


def fit_piecewise_linear(b: np.ndarray, t: np.ndarray) -> Fit:
    """c + a max(0, b - b0), b0 over every measured load and 0 (least relative error)."""
    best: Fit | None = None
    for b0 in sorted({0, *np.unique(b).astype(int).tolist()}):
        X = np.column_stack([np.ones_like(t), np.maximum(0, b - b0)])
        c, a = _nnls(X, t)
        c = _positive_c(c, t)
        f = _score("piecewise_linear", {"c_ms": c * 1e3, "a_ms": a * 1e3, "b0": int(b0)}, X @ [c, a], t)
        if best is None or f.mean_rel_err < best.mean_rel_err:
            best = f
    assert best is not None  # the grid is never empty
    return best


def fit_affine(p: np.ndarray, d: np.ndarray, ctx: np.ndarray, t: np.ndarray) -> Fit:
    """c + a_p prefill + a_d decode + a_ctx context."""
    X = np.column_stack([np.ones_like(t), p, d, ctx])
    coef = _nnls(X, t)
    coef[0] = _positive_c(coef[0], t)
    params = {"c_ms": coef[0] * 1e3, "prefill_ms": coef[1] * 1e3, "decode_ms": coef[2] * 1e3,
              "context_ms": coef[3] * 1e3}
    return _score("affine", params, X @ coef, t)


def fit_all(prefill, decode, context, seconds) -> dict[str, Fit]:
    """Every model fitted to the same measurements (arrays of equal length; times in seconds)."""
    p, d, c, t = (np.asarray(x, dtype=float) for x in (prefill, decode, context, seconds))
    if not (len(p) == len(d) == len(c) == len(t)) or len(t) < 4:
        raise ValueError("fitting needs at least 4 measurements, with prefill, decode, context and time each")
    if np.any(t <= 0) or not np.all(np.isfinite(t)):
        raise ValueError("measured times must be finite and > 0")
    b = p + d
    return {"staircase": fit_staircase(b, t), "piecewise_linear": fit_piecewise_linear(b, t),
            "affine": fit_affine(p, d, c, t)}


def r2_of(model: BatchTimeModel, prefill, decode, context, seconds) -> float:
    """R^2 of any batch-time model's predictions against measured times."""
    t = np.asarray(seconds, dtype=float)
    pred = np.array([model.duration(int(a), int(b), int(c)) for a, b, c in zip(prefill, decode, context)])
    return 1.0 - float(np.sum((t - pred) ** 2)) / float(np.sum((t - t.mean()) ** 2))
