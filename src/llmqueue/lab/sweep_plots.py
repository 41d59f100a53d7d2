"""Figures of a sweep: growth rate against rate beside the fluid line, throughput, latency, and
each policy's maximum stable rate against lambda*."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..sim.manifest import reseal, unseal
from .plots import color, figure, finish, label, save


def _configs(df: pd.DataFrame) -> list[tuple]:
    keys = df[["token_budget", "max_batch_size"]].astype(object).drop_duplicates()
    return [tuple(None if pd.isna(v) else int(v) for v in row) for row in keys.itertuples(index=False)]


def _select(df: pd.DataFrame, b: int, k) -> pd.DataFrame:
    m = df["token_budget"] == b
    m &= df["max_batch_size"].isna() if k is None else (df["max_batch_size"] == k)
    return df[m]


def _title(b: int, k) -> str:
    return f"token budget {b}" + ("" if k is None else f", k_max {k}")


def _rate_figure(summary: pd.DataFrame, path: Path, w: float, draw, ylabel: str, title: str, **finish_kw) -> Path:
    """One panel per (token budget, k_max) configuration against the relative arrival rate:
    ``draw(ax, rows, b, k)`` plots that configuration's rows, then the panel is labelled."""
    cfgs = _configs(summary)
    fig, axes = figure(1, len(cfgs), w=w)
    for ax, (b, k) in zip(axes[0], cfgs):
        draw(ax, _select(summary, b, k), b, k)
        finish(ax, "arrival rate / lambda*", ylabel, f"{title}, {_title(b, k)}", **finish_kw)
    return save(fig, path)


def slope_figure(summary: pd.DataFrame, results: dict, path: Path) -> Path:
    def draw(ax, d: pd.DataFrame, b: int, k) -> None:
        pad = 0.05 * (d["rate_rel"].max() - d["rate_rel"].min())
        x_line = np.linspace(d["rate_rel"].min() - pad, d["rate_rel"].max() + pad, 200)
        fl = d.dropna(subset=["fluid_slope"])
        if len(fl):
            # the fluid slope is linear in the rate: fit it exactly through the points
            slope_per_rel = np.polyfit(fl["rate_rel"], fl["fluid_slope"], 1)
            ax.plot(x_line, np.maximum(0, np.polyval(slope_per_rel, x_line)), "k--", lw=1.2,
                    label="fluid line (Theorem 2)")
        pols = list(dict.fromkeys(d["policy"]))
        step = np.diff(np.unique(d["rate_rel"])).min() if d["rate_rel"].nunique() > 1 else 0.1
        for j, (pol, g) in enumerate(d.groupby("policy", sort=False)):
            # dodge the policies a little so that identical results stay visible
            dx = (j - (len(pols) - 1) / 2) * 0.06 * step
            yerr = np.vstack([g["slope"] - g["slope_lo"], g["slope_hi"] - g["slope"]])
            ax.errorbar(g["rate_rel"] + dx, g["slope"], yerr=np.nan_to_num(yerr), fmt="o", ms=4, capsize=3,
                        color=color(pol), label=label(pol))
            res = results.get((pol, b, k))
            if res is not None and res.stable_rel is not None and x_line[0] <= res.stable_rel <= x_line[-1]:
                ax.axvline(res.stable_rel, color=color(pol), lw=0.8, ls=":")
        ax.axvline(1.0, color="grey", lw=0.8)
    return _rate_figure(summary, path, 6.5, draw, "backlog growth rate (tokens/s)", "growth rate with 95% CI")


def throughput_figure(summary: pd.DataFrame, path: Path) -> Path:
    def draw(ax, d: pd.DataFrame, b: int, k) -> None:
        for pol, g in d.groupby("policy", sort=False):
            ax.plot(g["rate_rel"], g["throughput_tokens_per_s"], "o-", ms=4, color=color(pol), label=label(pol))
        ax.axhline(d["capacity_tokens_per_s"].iloc[0], color="k", ls="--", lw=1, label="b_max / t(b_max)")
    return _rate_figure(summary, path, 6.0, draw, "throughput after warm-up (tokens/s)", "throughput")


def latency_figure(summary: pd.DataFrame, path: Path) -> Path:
    def draw(ax, d: pd.DataFrame, b: int, k) -> None:
        for pol, g in d.groupby("policy", sort=False):
            for p, style in ((50, "o-"), (99, "s--")):
                ax.plot(g["rate_rel"], g[f"p{p}_ttft_ms"], style, ms=3, color=color(pol), label=f"{label(pol)} p{p}")
        ax.set_yscale("log")
    return _rate_figure(summary, path, 6.0, draw, "TTFT (ms)", "time to first token",
                        legend={"fontsize": 7, "ncol": 2}, which="both")


def max_stable_figure(results: dict, path: Path) -> Path:
    """One row per configuration: the bracket [shown stable, shown unstable] against lambda*, with
    the undecided zone inside it hatched."""
    keys = list(results)
    fig, axes = figure(1, 1, w=7.0, h=1.0 + 0.55 * len(keys))
    ax = axes[0][0]
    ends = [1.0]
    for i, key in enumerate(keys):
        res = results[key]
        lo, hi = res.stable_rel, res.unstable_rel
        y = len(keys) - 1 - i
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color=color(key[0]), lw=6, solid_capstyle="butt", alpha=0.5)
        if res.undecided_lo is not None:
            ax.barh(y, res.undecided_hi - res.undecided_lo, left=res.undecided_lo, height=0.3, color="none",
                    edgecolor="grey", hatch="////", lw=0.5)
        if lo is not None:
            ax.plot(lo, y, "o", color=color(key[0]), ms=8)
            ends.append(lo)
        if hi is not None:
            ax.plot(hi, y, "|", color=color(key[0]), ms=14, mew=2)
            ends.append(hi)
        txt = (f"{100 * (lo - 1):+.1f}% .. {100 * ((hi or lo) - 1):+.1f}%" if lo is not None
               else f"< {100 * (hi - 1):+.1f}%")
        ax.annotate(txt, ((hi if hi is not None else lo), y), textcoords="offset points", xytext=(10, 0),
                    ha="left", va="center", fontsize=8)
    ax.axvline(1.0, color="k", ls="--", lw=1, label="lambda*: the best any scheduler can do")
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels([f"{label(k[0])} b={k[1]}" + ("" if k[2] is None else f" k={k[2]}") for k in keys][::-1],
                       fontsize=8)
    ax.set_ylim(-0.7, len(keys) - 0.3)
    span = max(ends) - min(ends)
    ax.set_xlim(min(ends) - 0.08 * span - 0.02, max(ends) + 0.3 * span + 0.04)
    ax.set_xlabel("arrival rate / lambda*   (dot: shown stable, tick: shown unstable, hatched: undecided)",
                  fontsize=8)
    ax.set_title("empirical maximum stable rate", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3, axis="x")
    return save(fig, path)


def sweep_figures(outcome, spec, out: Path) -> list[Path]:
    """The sweep's figures, added to its folder (which is sealed again with them when it was sealed)."""
    out = Path(out)
    sealed = unseal(out)
    figs = [slope_figure(outcome.summary, outcome.results, out / "growth_rate.png"),
            throughput_figure(outcome.summary, out / "throughput.png"),
            latency_figure(outcome.summary, out / "latency.png")]
    if outcome.results:
        figs.append(max_stable_figure(outcome.results, out / "max_stable.png"))
    if sealed is not None:
        reseal(out, sealed)
    return figs
