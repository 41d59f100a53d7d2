"""Measure the real engine's iteration time over a grid of batch shapes and fit the models.

A grid cell is (prefill tokens P, decode tokens D, context length L, prefill context C): one
batch with a P-token prefill chunk of a prompt whose first C tokens are already in the cache (C = 0:
a fresh prompt; C > 0: a chunk that continues a partly prefilled prompt, as Sarathi-Serve's chunks
often do) and one decode token for each of D requests whose KV caches hold L tokens on average
(spread evenly over [L/2, 3L/2], as the requests of a real batch are at different points of their
lives). The context term of the batch (the affine model's variable, as the simulator computes it)
is the sum of the decoding requests' contexts plus D plus C plus P. Each cell is timed ``repeats`` times through
:func:`~llmqueue.real.serve.step`, the code path of online runs (policy, plan check, forward
pass, bookkeeping); the (cell,
repeat) pairs run in a seeded random order so that a slow spell of a shared machine spreads over
the grid instead of biasing some cells. The models are fitted to the per-cell medians.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..engine.core import EngineCore
from ..engine.request import Request
from ..policies.real_systems import SarathiServe
from .fit import FIT_NAMES, fit_all, r2_of
from .runner import ModelRunner
from .serve import step


@dataclass(frozen=True)
class Grid:
    prefill: tuple[int, ...] = (0, 32, 64, 128, 256)
    decode: tuple[int, ...] = (0, 1, 2, 4, 8, 32, 64, 128)
    context: tuple[int, ...] = (32, 128, 512)
    prefill_context: tuple[int, ...] = (0, 64)   # prompt tokens already cached before the chunk
    repeats: int = 5
    max_tokens: int | None = None       # skip cells with more than this many tokens (the token budget)

    def __post_init__(self) -> None:
        for name in ("prefill", "decode", "context", "prefill_context"):
            vals = getattr(self, name)
            if not vals or any((not isinstance(v, int)) or v < 0 for v in vals):
                raise ValueError(f"profile grid: {name} must be non-negative integers, got {vals!r}")
        if any(v < 1 for v in self.context):
            raise ValueError("profile grid: context lengths must be >= 1")
        if self.repeats < 1:
            raise ValueError(f"profile grid: repeats must be >= 1, got {self.repeats}")
        if not self.cells():
            raise ValueError("profile grid: no cell with at least one token (and at most max_tokens)")

    def cells(self) -> list[tuple[int, int, int, int]]:
        """(P, D, L, C) with at least one token; L is irrelevant (first value only) when D = 0,
        and C when P = 0."""
        out = []
        for p in self.prefill:
            for d in self.decode:
                if p + d == 0 or (self.max_tokens is not None and p + d > self.max_tokens):
                    continue
                for L in (self.context if d > 0 else self.context[:1]):
                    for c in (self.prefill_context if p > 0 else self.prefill_context[:1]):
                        out.append((p, d, L, c if p > 0 else 0))
        return out


def spread_contexts(L: int, d: int) -> list[int]:
    """Context lengths of the ``d`` decoding requests of a cell: spread evenly over [L/2, 3L/2]
    (mean L), as in a real batch, where requests are at different points of their lives."""
    if d == 1:
        return [L]
    return [max(1, round(L * (0.5 + (i + 0.5) / d))) for i in range(d)]


def _time_cell(runner: ModelRunner, p: int, d: int, L: int, clock, c: int = 0) -> tuple[int, float]:
    """One timed iteration of cell (p, d, L, c) through :func:`~llmqueue.real.serve.step`, the online
    loop's code path (policy, plan check, forward pass, bookkeeping). Sarathi-Serve with a budget
    of exactly ``p + d`` schedules the cell: the ``d`` decodes, then the ``p``-token chunk (the rest
of a ``c + p``-token prompt whose first ``c`` tokens are already cached).
    Returns the batch's context tokens and the seconds it took."""
    core = EngineCore(SarathiServe(token_budget=p + d))
    for i, ctx in enumerate(spread_contexts(L, d)):
        req = Request(i, 0.0, ctx, 2)
        runner.prime(req, ctx)
        core.add(req, 0.0, prefill_done=ctx)
    if p:
        req = Request(d, 0.0, c + p, 1)
        runner.prime_prefill(req, c)
        core.add(req, 0.0, prefill_done=c)
    t = clock()
    ctx, _, _ = step(core, runner, 0.0, clock)
    dt = clock() - t
    for i in list(core.states):
        runner.release(i)
    return ctx, dt


def measure(runner: ModelRunner, grid: Grid, seed: int = 0, warmup: int = 3,
            progress: Callable[[int, int], None] | None = None,
            clock: Callable[[], float] = time.perf_counter, cold: bool = True) -> pd.DataFrame:
    """Raw samples: one row per timed iteration (prefill, decode, context_len, prefill_context,
    context_tokens, seconds).

    ``cold`` (the default) measures under the conditions of an online run rather than of a tight
    loop: half the KV pool is held by filler blocks chosen at random, so a cell's requests get
    scattered blocks as in a long-running engine, and on the CPU a 64 MB buffer is rewritten
    before each timed iteration so that the cell's data is not still in the processor's caches
    (in an online run, other requests' iterations run in between). On this project's 2-core
    machine a tight warm loop underestimates decode steps by about 10%.
    """
    cells = grid.cells()
    rng = np.random.default_rng(seed)
    fillers: list[int] = []
    if cold:
        fillers = _fragment(runner, rng)
    flush = torch.empty(16 * 2 ** 20) if cold and runner.device.type == "cpu" else None
    for _ in range(warmup):
        for p, d, L, c in (cells[0], cells[-1]):
            _time_cell(runner, p, d, L, clock, c)
    order = [(c, r) for c in range(len(cells)) for r in range(grid.repeats)]
    rng.shuffle(order)
    rows = []
    for k, (c, _) in enumerate(order):
        p, d, L, pc = cells[c]
        if flush is not None:
            flush.fill_(float(k))
        rows.append((p, d, L, pc, *_time_cell(runner, p, d, L, clock, pc)))
        if progress is not None:
            progress(k + 1, len(order))
    for f in fillers:
        runner.cache.release(f)
    df = pd.DataFrame(rows, columns=["prefill", "decode", "context_len", "prefill_context", "context_tokens",
                                     "seconds"])
    return df.sort_values(["prefill", "decode", "context_len", "prefill_context"],
                          kind="stable").reset_index(drop=True)


def _fragment(runner: ModelRunner, rng: np.random.Generator) -> list[int]:
    """Hold a random half of the KV pool's blocks with one-block filler requests (negative ids)."""
    cache = runner.cache
    ids = [-1 - j for j in range(cache.free_blocks)]
    for f in ids:
        cache.append(f, cache.block_size)
    keep = rng.permutation(len(ids))[: len(ids) // 2]
    kept = [ids[i] for i in sorted(keep)]
    for f in set(ids) - set(kept):
        cache.release(f)
    return kept


def cell_medians(samples: pd.DataFrame) -> pd.DataFrame:
    """Per cell: median, 10th and 90th percentile of the samples, and their count."""
    if "prefill_context" not in samples:       # samples from before the prefill-context axis
        samples = samples.assign(prefill_context=0)
    g = samples.groupby(["prefill", "decode", "context_len", "prefill_context", "context_tokens"])["seconds"]
    out = g.agg(median="median", p10=lambda x: x.quantile(0.1), p90=lambda x: x.quantile(0.9),
                n="count").reset_index()
    return out


def build_profile(samples: pd.DataFrame, *, name: str, model_desc: dict, device_desc: str,
                  threads: int, grid: Grid) -> dict:
    """Fit every model to the cell medians and assemble the stored profile (each fit's residuals
    are listed in the order of ``measurements``)."""
    med = cell_medians(samples)
    fits = fit_all(med["prefill"], med["decode"], med["context_tokens"], med["median"])
    raw = {k: r2_of(f.build(), samples["prefill"], samples["decode"], samples["context_tokens"],
                    samples["seconds"]) for k, f in fits.items()}
    recommended = min(FIT_NAMES, key=lambda k: fits[k].mean_rel_err)
    spread = ((med["p90"] - med["p10"]) / med["median"]).to_numpy()
    return {
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_desc,
        "device": device_desc,
        "threads": threads,
        "torch": torch.__version__,
        "grid": {"prefill": list(grid.prefill), "decode": list(grid.decode),
                 "context": list(grid.context), "prefill_context": list(grid.prefill_context),
                 "repeats": grid.repeats, "max_tokens": grid.max_tokens},
        "noise": {"median_rel_spread_p10_p90": float(np.median(spread)),
                  "max_rel_spread_p10_p90": float(np.max(spread))},
        "recommended": recommended,
        "fits": {k: {**f.summary(), "r2_raw_samples": raw[k],
                     "residuals_ms": [round(x, 4) for x in f.residuals_ms]} for k, f in fits.items()},
        "measurements": [[int(r.prefill), int(r.decode), int(r.context_len), int(r.prefill_context),
                          int(r.context_tokens),
                          round(float(r.median) * 1e3, 4), round(float(r.p10) * 1e3, 4),
                          round(float(r.p90) * 1e3, 4), int(r.n)] for r in med.itertuples()],
        "measurement_columns": ["prefill", "decode", "context_len", "prefill_context", "context_tokens", "median_ms",
                                "p10_ms", "p90_ms", "samples"],
    }


def warm_up(runner: ModelRunner, token_budget: int, rounds: int = 3) -> None:
    """Run a few untimed iterations of typical shapes before a timed run, so that one-off costs
    (first kernel calls, allocator growth, workspace buffers) do not land in its first batches."""
    half = max(1, token_budget // 2)
    for _ in range(rounds):
        for p, d, L, c in ((token_budget, 0, 1, 0), (half, token_budget - half, 64, 32),
                           (0, token_budget, 128, 0)):
            if p + d:
                _time_cell(runner, p, d, L, time.perf_counter, c)
