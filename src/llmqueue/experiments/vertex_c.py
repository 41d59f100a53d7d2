"""Paper section 6: vertex C of the k_max stability region, and the five configurations there.

k_max = 100, one request every 467.5 ms with 290 prompt + 990 decode tokens, so the token rates
are (lambda_p, lambda_d) = (29, 99) / 46.75 tokens/ms. Left: requests in system over time for
Sarathi-Serve at b_max 128 (bounded), Orca at 128 and Sarathi-Serve at 1024 (both diverge);
FasterTransformer and vLLM at 128 cannot form a batch at all. Right: the stability region in
(lambda_p, lambda_d) for k_max 100, computed by the project's linear program over feasible batch
compositions along many directions, for b_max 128 and 1024, with vertex C marked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np

from ..analysis.theory import stability_region_scale
from ..lab.config import build_scenario
from ..lab.plots import color, figure, finish, label, save
from .common import engine, pmap, scenario_args, trajectory, write_result

CONFIGS = (("sarathi", 128), ("orca", 128), ("sarathi", 1024), ("fastertransformer", 128), ("vllm", 128))
K_MAX = 100


class _Sizes(TypedDict):
    horizon_s: float
    boundary_points: int


#: Run size of the full experiment and of the --fast one (boundary points of the region plot).
SIZES: dict[bool, _Sizes] = {False: {"horizon_s": 300.0, "boundary_points": 91},
                             True: {"horizon_s": 120.0, "boundary_points": 31}}
STYLE = {("sarathi", 128): "-", ("orca", 128): "-", ("sarathi", 1024): "--"}


def region_boundary(bt, b_max: int, k_max: int, n: int = 91) -> np.ndarray:
    """Points theta(phi) * (cos phi, sin phi) on the region's boundary, tokens/s."""
    phis = np.linspace(0.0, np.pi / 2, n)
    pts = []
    for phi in phis:
        d = np.array([np.cos(phi), np.sin(phi)])
        d[np.abs(d) < 1e-12] = 0.0
        pts.append(stability_region_scale(bt, b_max, k_max, float(d[0]), float(d[1])) * d)
    return np.array(pts)


def run(out: Path, *, fast: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    t0 = time.monotonic()
    payload, base = scenario_args("vertex-c")
    sc = build_scenario(payload, base)
    arrival = sc.single_specs()[1].arrival
    assert arrival is not None  # the vertex-c scenario generates arrivals
    rate = arrival.rate
    bt = sc.build_batch_time()
    horizon = SIZES[fast]["horizon_s"]
    jobs = [(payload, base, engine(p, b, K_MAX), rate, 0, horizon) for p, b in CONFIGS]
    runs = pmap(trajectory, jobs, progress=progress)
    lam_p, lam_d = rate * 290, rate * 990
    fig, axes = figure(1, 2, w=6.2, h=4.6)
    ax = axes[0][0]
    numbers: dict = {"rate": rate, "lambda_p_tokens_per_ms": lam_p / 1e3, "lambda_d_tokens_per_ms": lam_d / 1e3,
                     "k_max": K_MAX, "horizon_s": horizon, "configs": []}
    findings = []
    stalled = []
    for (p, b), r in zip(CONFIGS, runs):
        theta = stability_region_scale(bt, b, K_MAX, lam_p, lam_d)
        entry = {"policy": p, "token_budget": b, "region_scale_theta": theta}
        if "stalled" in r:
            entry.update(verdict="cannot form a batch", reason=r["stalled"])
            stalled.append(f"{label(p)} at b_max {b}")
        else:
            e = r["estimate"]
            entry.update(verdict=r["verdict"]["verdict"], slope=e["slope"], slope_lo=e["lo"], slope_hi=e["hi"],
                         t=r["t"], in_system=r["in_system"], max_in_system=max(r["in_system"]),
                         end_in_system=r["in_system"][-1], reason=r["verdict"]["reason"])
            ax.plot(r["t"], r["in_system"], STYLE[(p, b)], color=color(p), lw=1.4,
                    label=f"{label(p)} b_max {b}: {entry['verdict']} ({e['slope']:+.0f} tok/s)")
            findings.append(f"{label(p)} at b_max {b} is {entry['verdict']}: {e['slope']:+.1f} tokens/s "
                            f"(95% CI [{e['lo']:+.1f}, {e['hi']:+.1f}]), {entry['end_in_system']} requests in "
                            f"system at {horizon:g} s (LP scale theta = {theta:.4f}).")
        numbers["configs"].append(entry)
    if stalled:
        findings.append(f"{' and '.join(stalled)} cannot form a batch: a 290-token prompt never fits whole "
                        f"in 128 tokens.")
        ax.text(0.02, 0.97, "FasterTransformer, vLLM at b_max 128:\nno batch can be formed (290-token prompt)",
                transform=ax.transAxes, va="top", fontsize=8, bbox={"facecolor": "white", "alpha": 0.8})
    finish(ax, "time (s)", "requests in system",
           "at vertex C (k_max 100, 290 + 990 tokens every 467.5 ms)", title_size=10, legend={"loc": "center left"})

    ax = axes[0][1]
    regions = {}
    for b, ls in ((128, "-"), (1024, "--")):
        pts = region_boundary(bt, b, K_MAX, SIZES[fast]["boundary_points"]) / 1e3
        regions[b] = pts.tolist()
        ax.plot(pts[:, 0], pts[:, 1], ls, color="k" if b == 128 else "#1f77b4", lw=1.5,
                label=f"stability region boundary, b_max {b}, k_max {K_MAX}")
        if b == 128:
            ax.fill(np.r_[0, pts[:, 0], 0], np.r_[0, pts[:, 1], 0], color="k", alpha=0.08)
    ax.plot([lam_p / 1e3], [lam_d / 1e3], "r*", ms=14, label="vertex C (29, 99) / 46.75 tokens/ms")
    ax.annotate("C", (lam_p / 1e3, lam_d / 1e3), textcoords="offset points", xytext=(8, 6), fontsize=11, color="r")
    ax.set_xlabel("prefill token rate lambda_p (tokens/ms)")
    ax.set_ylabel("decode token rate lambda_d (tokens/ms)")
    ax.set_title("k_max stability region (LP over batch compositions)", fontsize=10)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    numbers["region_boundary_tokens_per_ms"] = {str(b): v for b, v in regions.items()}
    theta128 = stability_region_scale(bt, 128, K_MAX, lam_p, lam_d)
    findings.insert(0, f"Vertex C lies on the boundary of the b_max 128 region (LP scale theta = {theta128:.6f}).")
    figs = [save(fig, out / "vertex_c.png")]
    return write_result(out, "vertex-c", findings, numbers, figs, time.monotonic() - t0)
