"""A plan's outputs: the results JSON, the Pareto plot (goodput against cost) and an HTML page."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from ...sim.manifest import write_text
from ..plots import save
from .run import PlanOutcome
from .spec import PlanSpec


def label(params: dict) -> str:
    short = {"policy": "", "token_budget": "b", "max_batch_size": "k", "gpu": "", "tp": "tp", "replicas": "x"}
    return " ".join(f"{short.get(k, k)}{v}" for k, v in params.items() if v is not None) or "scenario"


def write_json(outcome: PlanOutcome, path: Path) -> Path:
    write_text(path, json.dumps(outcome.to_json(), indent=1))
    return path


def plot(outcome: PlanOutcome, path: Path) -> Path | None:
    """Goodput against cost per million tokens, every configuration, the Pareto front joined."""
    pts = [r for r in outcome.rows if (r.get("max_rate") or 0) > 0 and r.get("cost_per_mtok") is not None
           and math.isfinite(r["cost_per_mtok"])]
    if not pts:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([r["cost_per_mtok"] for r in pts], [r["max_rate"] for r in pts], s=12, color="0.6",
               label="configurations")
    front = outcome.pareto
    ax.plot([r["cost_per_mtok"] for r in front], [r["max_rate"] for r in front], "o-", color="C3",
            label="Pareto front")
    for r in front[-6:]:
        ax.annotate(label(r["params"]), (r["cost_per_mtok"], r["max_rate"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 2))
    ax.set_xlabel("cost per million tokens ($)")
    ax.set_ylabel("goodput (requests/s meeting the SLOs)")
    slos = ", ".join(f"{k} <= {v:g}" for k, v in outcome.spec.slos.items())
    if outcome.spec.attainment is not None:
        slos += f" for {outcome.spec.attainment:.0%} of requests"
    ax.set_title(slos, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def measured(spec: PlanSpec, rows: list[dict]) -> str:
    """How the goodputs were measured, with their noise bands (:meth:`PlanSpec.band`)."""
    text = (f"screened: runs of {spec.num_requests * len(spec.seeds):,} requests (about "
            f"+/-{100 * spec.screen_band():.0f}%)")
    ns = sorted({r["requests"] for r in rows if r.get("refined")})
    if ns:
        text += "; refined: " + ", ".join(f"runs of {n:,} (about +/-{100 * spec.band(n):.1f}%)" for n in ns)
    elif spec.refine:
        text += "; no configuration refined"
    return text + "."


def html_section(spec: dict, results: dict, figure: str) -> str:
    """The plan as an HTML section: the answer, how the goodputs were measured, the table sorted
    by cost (``*`` on the Pareto front) and ``figure`` (the goodput-against-cost plot's HTML).

    ``spec`` is :meth:`PlanSpec.to_dict`, ``results`` :meth:`PlanOutcome.to_json`: plan.html and
    ``llmqueue report`` on a plan folder both build the section from them."""
    def cell(x) -> str:
        if isinstance(x, float):
            return "" if not math.isfinite(x) else f"{x:.4g}"
        return html.escape("" if x is None else str(x))
    s = PlanSpec.from_dict(spec)
    front = {json.dumps(p, sort_keys=True) for p in results.get("pareto", [])}
    head = ["configuration", "goodput req/s", "run", "p99 TTFT ms", "p99 TPOT ms", "GPUs", "$/h", "$ / M tokens",
            "capacity req/s"]
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in (
        label(r["params"]) + (" *" if json.dumps(r["params"], sort_keys=True) in front else ""), r.get("max_rate"),
        "refined" if r.get("refined") else "screened", r.get("p99_ttft_ms"), r.get("p99_tpot_ms"), r.get("gpus"),
        r.get("price_per_hour"), r.get("cost_per_mtok"), r.get("error") or r.get("pruned") or r.get("capacity")))
        + "</tr>" for r in results["configs"])
    best = results.get("best")
    slos = ", ".join(f"{k} <= {v:g} ms" for k, v in s.slos.items())
    if s.attainment is not None:
        slos += f", for {s.attainment:.0%} of requests"
    answer = (f"best: <b>{html.escape(label(best['params']))}</b>, goodput {best['max_rate']:.4g} req/s, "
              f"{cell(best.get('cost_per_mtok'))} $ per million tokens" if best else "no configuration meets the SLOs")
    method = ("Goodput: the highest Poisson rate meeting the SLOs, searched on the simulator below each "
              "configuration's capacity. " + measured(s, results["configs"]))
    out = ["<section><h2>Deployment plan</h2>", f"<p class=\"answer\">{answer}</p>",
           f"<p>SLOs: {html.escape(slos)}; scenario {html.escape(s.scenario)}.</p>",
           f"<p class=\"note\">{html.escape(method)} * marks the Pareto front (goodput against cost).</p>", figure,
           "<div class=\"scroll\"><table><tr>" + "".join(f"<th>{h}</th>" for h in head)
           + f"</tr>{rows}</table></div></section>"]
    return "\n".join(out)


def write_all(outcome: PlanOutcome, out: Path) -> list[Path]:
    """plan_results.json, pareto.png and plan.html in ``out``."""
    files = [write_json(outcome, out / "plan_results.json")]
    fig = plot(outcome, out / "pareto.png")
    if fig is not None:
        files.append(fig)
    page = out / "plan.html"
    img = f'<img src="{html.escape(fig.name)}" alt="goodput against cost">' if fig else ""
    write_text(page, "<!doctype html><html><head><meta charset='utf-8'><title>llmqueue plan</title></head><body>"
                    + html_section(outcome.spec.to_dict(), outcome.to_json(), img) + "</body></html>")
    files.append(page)
    return files
