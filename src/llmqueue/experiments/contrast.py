"""Paper Fig. 1, the stability contrast: number in system over time for the four policies.

The paper's workload (129 prompt + 112 decode tokens, fitted staircase, b_max 512) at 14 req/s,
which is 1.009 lambda* (critical: the paper's real traces had slightly different means), and at
0.85 lambda*, clearly below the boundary, where the two mixed, work-conserving policies stay
bounded and the two non-mixed ones run away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..lab.config import build_scenario
from ..lab.plots import PAPER_ORDER, color, figure, finish, label, save
from ..lab.reference import reference
from .common import engine, pmap, scenario_args, trajectory, write_result

RATE_CRITICAL = 14.0
SUBCRITICAL = 0.85
#: Run size of the full experiment and of the --fast one.
SIZES = {False: {"horizon_s": 1200.0}, True: {"horizon_s": 150.0}}


def _words(policy: str, r: dict) -> str:
    if "stalled" in r:
        return f"{label(policy)} cannot form a batch"
    e, v = r["estimate"], r["verdict"]["verdict"]
    verb = {"stable": "stays bounded", "unstable": "diverges", "inconclusive": "is undecided"}[v]
    return f"{label(policy)} {verb} ({e['slope']:+.0f} tokens/s, 95% CI [{e['lo']:+.0f}, {e['hi']:+.0f}])"


def run(out: Path, *, fast: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    t0 = time.monotonic()
    payload, base = scenario_args("fig1")
    lam_star = reference(build_scenario(payload, base)).lambda_star
    horizon = SIZES[fast]["horizon_s"]
    rates = {"14 req/s": RATE_CRITICAL, f"{SUBCRITICAL:g} lambda*": SUBCRITICAL * lam_star}
    jobs = [(payload, base, engine(p, 512), rate, 1, horizon) for rate in rates.values() for p in PAPER_ORDER]
    runs = pmap(trajectory, jobs, progress=progress)
    fig, axes = figure(1, 2, w=6.2, h=4.4)
    numbers: dict = {"lambda_star": lam_star, "horizon_s": horizon, "seed": 1, "panels": {}}
    findings = []
    i = 0
    for ax, (name, rate) in zip(axes[0], rates.items()):
        panel = {}
        words = []
        for p in PAPER_ORDER:
            r = runs[i]
            i += 1
            t, n = np.array(r["t"]), np.array(r["in_system"])
            ax.plot(t, n, color=color(p), lw=1.4,
                    label=f"{label(p)}: {r['verdict']['verdict']}, {r['estimate']['slope']:+.0f} tok/s")
            panel[p] = {"t": r["t"], "in_system": r["in_system"], "slope": r["estimate"]["slope"],
                        "slope_lo": r["estimate"]["lo"], "slope_hi": r["estimate"]["hi"],
                        "verdict": r["verdict"]["verdict"], "reason": r["verdict"]["reason"],
                        "warmup_s": r["estimate"]["warmup_s"], "fluid_slope": r["fluid_slope"]}
            words.append(_words(p, r))
        fluid = runs[i - 1]["fluid_slope"]
        numbers["panels"][name] = {"rate": rate, "rho": rate / lam_star, "fluid_slope": fluid, "policies": panel}
        findings.append(f"At {rate:.4g} req/s ({rate / lam_star:.3f} lambda*, fluid slope {fluid:+.0f} tokens/s): "
                        + "; ".join(words) + ".")
        finish(ax, "time (s)", "requests in system",
               f"{rate:.3g} req/s = {rate / lam_star:.3f} lambda*  (129 + 112 tokens, b_max 512)", title_size=10,
               legend={"loc": "upper left"})
    figs = [save(fig, out / "stability_contrast.png")]
    return write_result(out, "stability-contrast", findings, numbers, figs, time.monotonic() - t0)
