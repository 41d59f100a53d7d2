"""Paper Fig. 8: the batch sequences of the four policies on the worked example, as a picture.

A, B, C are decoding at time 0 (2, 4, 3 decode tokens); D and E (1 prompt + 1 decode token)
arrive during the first batch; every batch takes one time unit. The simulated sequences are
checked against the paper's (spec section 3) and drawn batch by batch: one column per batch,
one cell per token, coloured by request, hatched for prefill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.patches import Patch, Rectangle

from ..lab.config import build_scenario
from ..lab.plots import figure, label, save
from ..sim import simulate
from ..sim.batches import format_plan
from .common import engine, scenario_args, write_result

#: (policy, token budget, the paper's batch sequence)
PAPER = (
    ("vllm", 4, "[Ad Bd Cd] [Dp Ep] [Ad Bd Cd Dd] [Bd Cd Ed] [Bd]"),
    ("orca", 5, "[Ad Bd Cd] [Ad Bd Cd Dp Ep] [Bd Cd Dd Ed] [Bd]"),
    ("fastertransformer", 4, "[Ad Bd Cd] [Ad Bd Cd] [Bd Cd] [Bd] [Dp Ep] [Dd Ed]"),
    ("sarathi", 4, "[Ad Bd Cd] [Ad Bd Cd Dp] [Bd Cd Dd Ep] [Bd Ed]"),
)
#: Run size: the worked example is five requests and a handful of batches (about a second), so
#: --fast runs it whole: there is nothing to shorten without losing the comparison with the paper.
SIZES: dict = {False: {}, True: {}}
REQUEST_COLORS = {"A": "#8dd3c7", "B": "#ffffb3", "C": "#bebada", "D": "#fb8072", "E": "#80b1d3"}


def _batches(policy: str, budget: int):
    payload, base = scenario_args("fig8")
    sc = build_scenario(payload, base, engine(policy, budget))
    res = simulate(sc.build_policy(), sc.build_batch_time(), sc.build_workload().requests(sc.seed),
                   record_composition=True)
    it = res.iterations
    arrivals = [(res.labels[r], float(t)) for r, t in zip(res.requests["request_id"], res.requests["arrival_time"])
                if t > 0]
    out = []
    assert res.compositions is not None  # recorded: record_composition=True
    for plan, start, end in zip(res.compositions, it["start_time"], it["end_time"]):
        cells = sorted([(res.labels[r], "p", n) for r, n in plan.prefill] +
                       [(res.labels[r], "d", 1) for r in plan.decode])
        out.append({"start": float(start), "end": float(end), "cells": cells,
                    "text": format_plan(plan, res.labels)})
    return out, arrivals


def _draw(ax, batches, budget: int, title: str, arrivals) -> None:
    for b in batches:
        y = 0
        for name, kind, n in b["cells"]:
            for _ in range(n):
                ax.add_patch(Rectangle((b["start"] + 0.05, y + 0.05), b["end"] - b["start"] - 0.1, 0.9,
                                       facecolor=REQUEST_COLORS.get(name, "#dddddd"), edgecolor="k",
                                       hatch="//" if kind == "p" else None, lw=0.8))
                ax.text((b["start"] + b["end"]) / 2, y + 0.5, f"{name}{kind}", ha="center", va="center", fontsize=9)
                y += 1
    ax.axhline(budget, color="k", ls="--", lw=1)
    ax.text(7.1, budget + 0.12, f"budget {budget}", ha="right", va="bottom", fontsize=8)
    at: dict[float, list[str]] = {}
    for name, t in arrivals:
        at.setdefault(t, []).append(name)
    for t, names in at.items():
        verb = "arrives" if len(names) == 1 else "arrive"
        ax.annotate(f"{', '.join(names)} {verb}", xy=(t, 0), xytext=(t, -1.1), fontsize=7, ha="center",
                    arrowprops={"arrowstyle": "->", "lw": 0.8}, annotation_clip=False)
    ax.set_xlim(0, 7.2)
    ax.set_ylim(0, 5.6)
    ax.set_yticks(range(6))
    ax.set_ylabel("tokens")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)


def run(out: Path, *, fast: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    t0 = time.monotonic()
    fig, axes = figure(4, 1, w=8.0, h=2.1)
    numbers: dict[str, dict[str, Any]] = {}
    matches = []
    for ax, (policy, budget, paper) in zip(axes[:, 0], PAPER):
        batches, arrivals = _batches(policy, budget)
        seq = " ".join(b["text"] for b in batches)
        ok = seq == paper
        matches.append(ok)
        if progress is not None:
            progress(len(matches), len(PAPER))
        numbers[policy] = {"token_budget": budget, "simulated": seq, "paper": paper, "match": ok,
                           "batches": [{"start": b["start"], "end": b["end"], "batch": b["text"]} for b in batches]}
        _draw(ax, batches, budget, f"{label(policy)}, token budget {budget}: {seq}"
              + ("" if ok else "  (differs from the paper)"), arrivals)
    axes[-1, 0].set_xlabel("time (one batch = one time unit)")
    handles = [Patch(facecolor=c, edgecolor="k", label=n) for n, c in REQUEST_COLORS.items()]
    handles.append(Patch(facecolor="white", edgecolor="k", hatch="//", label="prefill token"))
    axes[0, 0].legend(handles=handles, ncol=6, fontsize=8, loc="upper right")
    figs = [save(fig, out / "fig8_batches.png")]
    n_ok = sum(matches)
    differing = ", ".join(p for (p, _, _), m in zip(PAPER, matches) if not m)
    findings = [f"{n_ok} of 4 policies reproduce the paper's Fig. 8 batch sequences exactly"
                + ("." if n_ok == 4 else f"; differing: {differing}."),
                "Batches needed to finish all five requests: "
                + ", ".join(f"{label(p)} {len(numbers[p]['batches'])}" for p, _, _ in PAPER) + "."]
    return write_result(out, "fig8", findings, numbers, figs, time.monotonic() - t0)
