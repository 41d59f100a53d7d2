"""Theorem 2: bounded backlog below lambda*, linear growth at the fluid slope above it.

Sarathi-Serve, b_max 512, every request 100 + 100 tokens, Poisson arrivals. Left: backlog
trajectories at 0.9 and 1.1 lambda* with the fluid line. Right: the measured growth rate, with
its 95% confidence interval, from 0.6 to 1.4 lambda* against the fluid line
max(0, lambda (m_p + m_d) - b_max / t(b_max)). The right panel is exactly the sweep
``llmqueue sweep theorem2 --rates 0.6:1.4:0.1 --seeds 1 --max-horizon <horizon>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np

from ..lab.plots import figure, finish, save
from ..lab.point import run_point
from ..lab.spec import make_spec
from .common import engine, pmap, trajectory, write_result

RATES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)


class _Sizes(TypedDict):
    horizon_s: float
    rates: tuple[float, ...]


#: Run size of the full experiment and of the --fast one.
SIZES: dict[bool, _Sizes] = {False: {"horizon_s": 1225.0, "rates": RATES},
                             True: {"horizon_s": 300.0, "rates": (0.6, 0.9, 1.1, 1.4)}}


def run(out: Path, *, fast: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    t0 = time.monotonic()
    horizon, rates = SIZES[fast]["horizon_s"], SIZES[fast]["rates"]
    spec = make_spec("theorem2", rates=list(rates), seeds=[1], horizon_s=horizon, max_horizon_s=horizon)
    ref = spec.reference_for(512, None)
    lam = ref.lambda_star
    grid = spec.grid_points({(512, None): ref})
    traj_jobs = [(spec.payload, spec.base, engine("sarathi", 512), f * lam, 1, horizon) for f in (0.9, 1.1)]
    # the longest jobs first, so that two workers finish together
    jobs = [(run_point, (spec.payload, spec.base, p)) for p in grid[::-1]] + [(trajectory, a) for a in traj_jobs]
    results = pmap(_call, jobs, progress=progress)
    rows = results[: len(grid)][::-1]
    trajs = results[len(grid):]

    fig, axes = figure(1, 2, w=6.2, h=4.4)
    ax = axes[0][0]
    for f, r, c in zip((0.9, 1.1), trajs, ("#2ca02c", "#d62728")):
        t, b = np.array(r["t"]), np.array(r["backlog"])
        ax.plot(t, b, color=c, lw=1.2, label=f"{f} lambda*: {r['verdict']['verdict']}, "
                                               f"{r['estimate']['slope']:+.0f} tok/s")
    fl = trajs[1]["fluid_slope"]
    t = np.array(trajs[1]["t"])
    ax.plot(t, fl * t, "k--", lw=1, label=f"fluid line {fl:+.0f} tokens/s")
    finish(ax, "time (s)", "unprocessed tokens", "Sarathi-Serve, 100 + 100 tokens, b_max 512", title_size=10)

    ax = axes[0][1]
    x = np.array([r["rate_rel"] for r in rows])
    y = np.array([r["slope"] for r in rows])
    lo, hi = np.array([r["slope_lo"] for r in rows]), np.array([r["slope_hi"] for r in rows])
    xs = np.linspace(min(x), max(x), 200)
    ax.plot(xs, np.maximum(0, xs * lam * ref.mean_tokens - ref.capacity_tokens_per_s), "k--", lw=1.2,
            label="fluid line (Theorem 2)")
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color="#2ca02c", capsize=4, label="measured, 95% CI")
    ax.axvline(1.0, color="grey", lw=0.8)
    finish(ax, "arrival rate / lambda*", "backlog growth rate (tokens/s)",
           f"growth rate against the fluid line (lambda* = {lam:.4g} req/s)", title_size=10)
    figs = [save(fig, out / "theorem2.png")]

    inside = sum(bool(r["fluid_in_ci"]) for r in rows)
    keep = ("rate", "rate_rel", "slope", "slope_lo", "slope_hi", "fluid_line", "fluid_in_ci", "verdict",
            "warmup_s", "warmup_method", "throughput_tokens_per_s", "verdict_reason")
    numbers = {"lambda_star": lam, "capacity_tokens_per_s": ref.capacity_tokens_per_s, "horizon_s": horizon,
               "seed": 1, "points": [{k: r[k] for k in keep} for r in rows],
               "trajectories": {str(f): {"t": r["t"], "backlog": r["backlog"], "verdict": r["verdict"]["verdict"],
                                         "slope": r["estimate"]["slope"]} for f, r in zip((0.9, 1.1), trajs)}}
    by = {round(r["rate_rel"], 6): r for r in rows}
    findings = []
    for f in (0.9, 1.1):
        r = by.get(f)
        if r is not None:
            findings.append(f"At {f} lambda* Sarathi-Serve is {r['verdict']}: {r['slope']:+.1f} tokens/s "
                            f"(95% CI [{r['slope_lo']:+.1f}, {r['slope_hi']:+.1f}]), "
                            f"fluid line {r['fluid_line']:+.1f}.")
    findings.append(f"The fluid line lies inside the 95% interval at {inside} of {len(rows)} rates from "
                    f"{min(x):g} to {max(x):g} lambda*.")
    return write_result(out, "theorem2", findings, numbers, figs, time.monotonic() - t0)


def _call(fn, args):
    return fn(*args)
