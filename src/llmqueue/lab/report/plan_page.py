"""The report of a plan folder (``llmqueue plan --out``): the plan's section (answer, table,
Pareto plot embedded), built by :func:`llmqueue.lab.plan.output.html_section` like plan.html."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import ReportError
from ..plan.output import html_section
from . import html as h


def build(folder: Path) -> tuple[str, list[str]]:
    try:
        spec = json.loads((folder / "plan.json").read_text())["spec"]
        results = json.loads((folder / "plan_results.json").read_text())
        results["configs"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ReportError(f"{folder} is not a finished plan folder: {type(e).__name__}: {e}") from None
    fig = folder / "pareto.png"
    figure = h.figure_file(fig, "goodput against cost per million tokens; the Pareto front joined") \
        if fig.exists() else ""
    return f"Deployment plan: {spec.get('scenario', '')}", [html_section(spec, results, figure)]
