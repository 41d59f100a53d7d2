"""Compare two runs written by ``write_run`` (a simulated and a real one, typically): throughput,
latency, backlog growth, and each iteration's measured time against a batch-time model.

Works on the files alone (requests.csv, iterations.csv, summary.json, and the real engine's
iterations_real.csv when present), so any two run folders can be compared. No torch needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.batch_time import BatchTimeModel
from ..sim.manifest import atomic_path, verify
from ..sim.metrics import request_latencies
from ..sim.tables import read_run_table, run_table_exists

HEADLINE = ("token_throughput", "output_throughput", "request_throughput", "busy_fraction",
            "mean_batch_tokens", "mean_ttft_ms", "p50_ttft_ms", "p99_ttft_ms", "mean_e2el_ms",
            "p50_e2el_ms", "p99_e2el_ms", "mean_itl_ms", "p99_itl_ms", "max_backlog_tokens",
            "final_backlog_tokens", "completed")


@dataclass
class Run:
    """One run folder, loaded."""

    path: Path
    requests: pd.DataFrame
    iterations: pd.DataFrame
    summary: dict
    details: pd.DataFrame | None

    @property
    def label(self) -> str:
        return str(self.summary.get("engine", self.path.name))


def load_run(path: str | Path) -> Run:
    """Read a run folder; a missing or malformed file is one clear error."""
    p = Path(path)
    need = ("requests", "iterations", "summary.json")
    missing = [f for f in need if not ((p / f).is_file() if "." in f else run_table_exists(p, f))]
    if missing:
        raise ValueError(f"{p}: not a run folder (missing {', '.join(missing)}); write one with "
                         f"`llmqueue simulate --out` or `llmqueue serve-bench --out`")
    verify(p)          # complete (manifest written last) and unchanged since, or one line saying why
    try:
        summary = json.loads((p / "summary.json").read_text())
        req = read_run_table(p, "requests")
        it = read_run_table(p, "iterations")
    except (json.JSONDecodeError, pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as e:
        raise ValueError(f"{p}: unreadable run file ({e})") from None
    det = pd.read_csv(p / "iterations_real.csv") if (p / "iterations_real.csv").is_file() else None
    return Run(p, req, it, summary, det)


def backlog_slope(iterations: pd.DataFrame, start_fraction: float = 1 / 3) -> float:
    """Least-squares slope (tokens/s) of the backlog over the last part of the run."""
    it = iterations
    if len(it) < 3:
        return float("nan")
    t0 = it["start_time"].iloc[0] + start_fraction * (it["start_time"].iloc[-1] - it["start_time"].iloc[0])
    tail = it[it["start_time"] >= t0]
    if len(tail) < 3 or tail["start_time"].nunique() < 2:
        return float("nan")
    return float(np.polyfit(tail["start_time"], tail["backlog_tokens"], 1)[0])


def rel_diff(a: float | None, b: float | None) -> float | None:
    """(b - a) / a, None when undefined."""
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b) or a == 0:
        return None
    return (b - a) / a


def compare_runs(a: Run, b: Run) -> dict:
    """Headline metrics of both runs, the relative difference of b against a, and backlog slopes."""
    rows = {}
    for key in HEADLINE:
        va, vb = a.summary.get(key), b.summary.get(key)
        rows[key] = {"a": va, "b": vb, "rel_diff": rel_diff(va, vb)}
    sa, sb = backlog_slope(a.iterations), backlog_slope(b.iterations)
    rows["backlog_slope_tokens_per_s"] = {"a": sa, "b": sb, "rel_diff": None}
    return {"a": str(a.path), "b": str(b.path), "metrics": rows}


def predicted_times(model: BatchTimeModel, run: Run) -> np.ndarray | None:
    """The model's time for each iteration of ``run`` (context from iterations_real.csv when the
    model needs it and the run has it; None if it needs context the run lacks)."""
    it = run.iterations
    if model.load_only:
        return np.array([model.load_time(int(b)) for b in it["prefill_tokens"] + it["decode_tokens"]])
    if run.details is None or len(run.details) != len(it):
        return None
    return np.array([model.duration(int(p), int(d), int(c)) for p, d, c in
                     zip(it["prefill_tokens"], it["decode_tokens"], run.details["context_tokens"])])


def plot_comparison(a: Run, b: Run, out: Path, model: BatchTimeModel | None = None) -> Path:
    """Four panels: backlog over time, E2E and TTFT CDFs, measured iteration time against the model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    for run, style in ((a, "-"), (b, "--")):
        it = run.iterations
        ax[0, 0].plot(it["start_time"], it["backlog_tokens"], style, label=run.label)
        lat = request_latencies(run.requests)
        for k, axis in (("e2el", ax[0, 1]), ("ttft", ax[1, 0])):
            x = np.sort(lat[k][np.isfinite(lat[k])]) * 1e3
            if len(x):
                axis.plot(x, np.arange(1, len(x) + 1) / len(x), style, label=run.label)
    ax[0, 0].set(xlabel="time (s)", ylabel="backlog (tokens)", title="backlog over time")
    ax[0, 1].set(xlabel="E2E latency (ms)", ylabel="CDF", title="end-to-end latency")
    ax[1, 0].set(xlabel="TTFT (ms)", ylabel="CDF", title="time to first token")
    for axis in (ax[0, 0], ax[0, 1], ax[1, 0]):
        axis.legend()
    panel = ax[1, 1]
    pred = predicted_times(model, b) if model is not None else None
    it = b.iterations
    measured = (it["end_time"] - it["start_time"]).to_numpy() * 1e3
    if model is not None and pred is not None:
        panel.scatter(pred * 1e3, measured, s=4, alpha=0.4)
        hi = float(max(measured.max(), pred.max() * 1e3)) if len(measured) else 1.0
        panel.plot([0, hi], [0, hi], "k-", lw=1)
        panel.set(xlabel="batch-time model (ms)", ylabel=f"measured ({b.label}) (ms)",
                  title="iteration time: measured vs model")
        panel.text(0.02, 0.98, model.describe(), transform=panel.transAxes, fontsize=7, va="top",
                   wrap=True)
    else:
        load = (it["prefill_tokens"] + it["decode_tokens"]).to_numpy()
        panel.scatter(load, measured, s=4, alpha=0.4)
        panel.set(xlabel="batch tokens", ylabel="iteration time (ms)", title=f"iteration time ({b.label})")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out
