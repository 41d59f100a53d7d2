"""The report of one run folder (``llmqueue simulate --out``): its verdict, paths and summary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from ...errors import ReportError
from ...sim.summary import RunSummary, SummaryError
from ..paths import RunPath
from ..plots import figure
from ..verdict import run_verdict
from . import html as h

SUMMARY_KEYS = ("policy", "batch_time", "duration_s", "num_requests", "completed", "in_system_at_end",
                "num_iterations", "token_throughput", "request_throughput", "max_backlog_tokens",
                "final_backlog_tokens", "p50_ttft_ms", "p99_ttft_ms", "p50_itl_ms", "p99_itl_ms",
                "p50_e2el_ms", "p99_e2el_ms")


def read_summary(folder: Path) -> RunSummary:
    """The run's summary.json, typed; a malformed one is a :class:`ReportError` (one line)."""
    path = folder / "summary.json"
    try:
        return RunSummary.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, SummaryError) as e:
        raise ReportError(f"{path} is not a run summary: {e}") from None


def build(folder: Path) -> tuple[str, list[str]]:
    run = read_summary(folder)
    summary = run.to_dict()
    horizon = run.duration_s
    until = run.extra.get("arrivals_until_s")
    path = RunPath.from_folder(folder, horizon, float(until) if isinstance(until, (int, float)) else 0.0)
    body = []
    cap = run.extra.get("capacity") or {}
    rv = run_verdict(path, cap)
    verdict_html = f"<p>{h.esc(rv.line())}</p>"
    if rv.verdict is not None:
        words = [rv.line(), *rv.details()]
        if cap.get("lambda_star"):
            words.append(f"lambda* = {cap['lambda_star']:.4g} req/s" +
                         (f"; this run is at rho = {cap['rho']:.4g}." if cap.get("rho") is not None else "."))
        verdict_html = "<div class=\"answer\"><p>" + h.verdict_span(rv.verdict.verdict) + "</p><ul>" + "".join(
            f"<li>{h.esc(w)}</li>" for w in words) + "</ul></div>"
    body += ["<h2>Verdict</h2>", verdict_html, "<h2>Over time</h2>"]
    t = path.grid(1000)
    fig, axes = figure(1, 2, w=6.0, h=3.8)
    axes[0][0].plot(t, path.backlog(t), color="#1f77b4")
    axes[0][0].set(xlabel="time (s)", ylabel="unprocessed tokens", title="backlog")
    axes[0][1].plot(t, path.in_system(t), color="#2ca02c")
    axes[0][1].set(xlabel="time (s)", ylabel="requests", title="requests in system")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    body.append(h.figure_mpl(fig, "backlog and number in system, rebuilt exactly from the requests and "
                                  "iterations tables"))
    for png in sorted(folder.glob("*.png")):
        body.append(h.figure_file(png, png.stem.replace("_", " ")))
    body.append("<h2>Summary</h2>")
    rows = pd.DataFrame([{"metric": k, "value": summary.get(k)} for k in SUMMARY_KEYS if k in summary])
    body.append(h.table(rows, text_cols=("metric", "value")))
    if cap.get("verdict"):
        body.append("<h2>Theory</h2><ul>" + "".join(f"<li>{h.esc(x)}</li>" for x in cap["verdict"]) + "</ul>")
    scenario = run.extra.get("scenario")
    if scenario:
        body += ["<h2>Scenario</h2>", h.pre(yaml.safe_dump(scenario, sort_keys=False))]
    name = (scenario or {}).get("name") or folder.name
    return f"Run: {name}", body
