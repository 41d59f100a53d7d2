"""The report of a sweep folder: the answer first (maximum stable rate against lambda*), then
the verdicts in plain words, the figures, the method, the scenario and every point."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from ...errors import ReportError
from ..plots import label
from ..spec import saved_spec
from . import html as h

SUMMARY_COLS = ["policy", "token_budget", "max_batch_size", "rate", "rate_rel", "slope", "slope_lo", "slope_hi",
                "fluid_line", "fluid_in_ci", "verdict", "seeds", "seeds_stable", "seeds_unstable",
                "seeds_inconclusive", "throughput_tokens_per_s", "p50_ttft_ms", "p99_ttft_ms", "p99_itl_ms"]
POINT_COLS = ["policy", "token_budget", "max_batch_size", "rate", "rate_rel", "seed", "horizon_used_s", "warmup_s",
              "warmup_method", "slope", "slope_lo", "slope_hi", "verdict", "throughput_tokens_per_s",
              "p50_ttft_ms", "p99_ttft_ms", "p50_itl_ms", "p99_itl_ms", "p99_e2el_ms"]


CAPTIONS = {
    "max_stable.png": "empirical maximum stable rate of each configuration, against lambda*",
    "growth_rate.png": "backlog growth rate with its 95% confidence interval, beside Theorem 2's fluid line",
    "throughput.png": "throughput after the warm-up, beside the capacity b_max / t(b_max)",
    "latency.png": "time to first token, p50 and p99 (log scale)",
}


def _config(pol, b, k) -> str:
    return f"{label(pol)} (token budget {b}" + ("" if k is None or pd.isna(k) else f", k_max {int(k)}") + ")"


def _bisect_sentences(path: Path) -> list[str]:
    out = []
    for r in json.loads(path.read_text()):
        lam = r["lambda_star"]
        lo, hi = r["stable_rel"], r["unstable_rel"]
        who = _config(r["policy"], r["token_budget"], r["max_batch_size"])
        if lo is None:
            out.append(f"{who} is not stable even at {hi * lam:.4g} req/s ({hi:.3g} lambda*).")
        elif hi is None:
            out.append(f"{who} is stable at every rate searched, up to {lo * lam:.4g} req/s ({lo:.3g} lambda*).")
        else:
            gap = 100 * (1 - (lo + hi) / 2)
            worst = max(abs(lo - 1), abs(hi - 1)) * 100
            how = (f"within {worst:.1f}% of lambda*: as high as any scheduler can go" if worst <= 3
                   else f"about {gap:.1f}% below lambda*, the best any scheduler could do" if gap > 0
                   else f"about {-gap:.1f}% above lambda*")
            zone = ""
            if r.get("undecided_lo") is not None:
                a, b = r["undecided_lo"] * lam, r["undecided_hi"] * lam
                where = f"at {a:.4g} req/s" if a == b else f"between {a:.4g} and {b:.4g} req/s"
                zone = f" ({where} the growth rate sits too close to the tolerance for the runs to decide)"
            top = "unstable" if r["upper_kind"] == "unstable" else f"{r['upper_kind']}, the top of the search"
            out.append(f"{who} is shown stable up to {lo * lam:.4g} req/s and {top} at {hi * lam:.4g} req/s"
                       f"{zone}: its maximum stable rate is {100 * (lo - 1):+.1f}% to {100 * (hi - 1):+.1f}% of "
                       f"lambda* = {lam:.4g} req/s, {how}.")
    return out


def _grid_sentences(summary: pd.DataFrame) -> list[str]:
    out = []
    for (pol, b, k), g in summary.groupby(["policy", "token_budget", "max_batch_size"], sort=False, dropna=False):
        g = g.sort_values("rate")
        st = g[g["verdict"] == "stable"]
        un = g[g["verdict"] == "unstable"]
        lam = g["lambda_star"].iloc[0]
        parts = []
        if len(st):
            parts.append(f"stable up to {st['rate'].max():.4g} req/s ({st['rate_rel'].max():.3g} lambda*)")
        if len(un):
            parts.append(f"unstable from {un['rate'].min():.4g} req/s ({un['rate_rel'].min():.3g} lambda*)")
        out.append(f"{_config(pol, b, k)}: " + ("; ".join(parts) or "no rate decided")
                   + f" among the rates swept; lambda* = {lam:.4g} req/s.")
    return out


def build(folder: Path) -> tuple[str, list[str]]:
    spec = saved_spec(folder)
    if spec is None:
        raise ReportError(f"{folder}: no sweep.json, not a sweep folder")
    summary = pd.read_parquet(folder / "summary.parquet")
    points = pd.read_parquet(folder / "points.parquet")
    name = spec.payload.get("name") or spec.scenario
    body = []
    answer = (_bisect_sentences(folder / "max_stable.json") if (folder / "max_stable.json").exists()
              else _grid_sentences(summary))
    body.append("<h2>Answer: up to which rate is each configuration stable?</h2>")
    body.append("<div class=\"answer\"><ul>" + "".join(f"<li>{h.esc(s)}</li>" for s in answer) + "</ul></div>")
    body.append("<p class=\"note\">lambda* is the best any scheduler could do with this engine and workload "
                "(Theorem 2, or the k_max stability region); the fluid line is Theorem 2's growth rate "
                "max(0, lambda (m_p + m_d) - b_max / t(b_max)) of a work-conserving policy.</p>")
    if (folder / "max_stable.csv").exists():
        ms = pd.read_csv(folder / "max_stable.csv")
        body.append(h.table(ms, ["policy", "token_budget", "max_batch_size", "lambda_star", "stable_rel",
                                 "unstable_rel", "upper_kind", "undecided_lo", "undecided_hi", "max_stable_rate",
                                 "probes"], ("policy", "upper_kind")))
    body.append("<h2>Verdicts (seeds pooled)</h2>")
    body.append(h.table(summary, SUMMARY_COLS, ("policy", "verdict")))
    reasons = [f"{_config(r.policy, r.token_budget, r.max_batch_size)} at {r.rate:.4g} req/s: {r.verdict_reason}"
               for r in summary.itertuples()]
    body.append("<ul>" + "".join(f"<li>{h.esc(s)}</li>" for s in reasons) + "</ul>")
    body.append("<h2>Figures</h2>")
    first = ["max_stable.png", "growth_rate.png", "throughput.png", "latency.png"]
    pngs = [folder / f for f in first if (folder / f).exists()]
    pngs += [p for p in sorted(folder.glob("*.png")) if p.name not in first]
    for png in pngs:
        body.append(h.figure_file(png, CAPTIONS.get(png.name, png.stem.replace("_", " "))))
    body.append("<h2>Method</h2>")
    tol = spec.tolerance
    body.append(f"<p>Each point simulates {spec.horizon_s:g} s (doubled while inconclusive, up to "
                f"{spec.max_horizon_s:g} s). The warm-up is chosen per run by MSER-5 on the backlog (capped at half "
                f"the run; a growing backlog hits the cap) and reported in the points table. The growth rate is the "
                f"net input of unprocessed tokens per second after the warm-up; its {100 * spec.confidence:g}% "
                f"interval comes from {spec.batches} batch means per run, pooled over seeds. A configuration is "
                f"<b>stable</b> when the whole interval lies below {100 * tol:g}% of the offered token rate, "
                f"<b>unstable</b> when it lies above, and <b>inconclusive</b> otherwise.</p>")
    if spec.bisect is not None:
        b = spec.bisect
        body.append(f"<p>Bisection on [{b.low:g}, {b.high:g}] lambda*, {b.replications} seeds per probe, "
                    f"inconclusive probes rerun with up to {b.escalations} doubled horizons and otherwise marked "
                    f"undecided (the search then narrows both gaps around them); stopped when every gap's "
                    f"high / low - 1 is at most {b.resolution:g}.</p>")
    body.append(h.pre(f"rates: {list(spec.rates)} ({'x lambda*' if spec.relative else 'req/s'})\n"
                      f"policies: {list(spec.policies)}\ntoken budgets: {list(spec.token_budgets)}\n"
                      f"k_max: {list(spec.max_batch_sizes)}\nseeds: {list(spec.seeds)}"))
    body.append("<h2>Scenario</h2>")
    body.append(h.pre(yaml.safe_dump(spec.payload, sort_keys=False)))
    body.append("<h2>Every point</h2>")
    body.append(h.details(f"{len(points)} points", h.table(points, POINT_COLS, ("policy", "warmup_method"))))
    return f"Stability sweep: {name}", body
