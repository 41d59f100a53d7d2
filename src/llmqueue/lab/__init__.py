"""The stability lab: is a configuration stable at a rate, up to which rate, and how far is that
from the best any scheduler could do (lambda*)? Measured, with confidence intervals, beside the
theory; swept in parallel (local processes or Ray) with resume; reports.

Layers, each in its own module:

* ``paths``, ``warmup``, ``growth``, ``verdict``: one run's backlog path, its warm-up (MSER-5),
  the growth rate with a confidence interval, and the verdict against a tolerance;
* ``reference``: lambda* and Theorem 2's fluid slope for a scenario;
* ``spec``, ``point``, ``bisect``, ``backends``, ``journal``, ``sweep``, ``tables``: sweeps;
* ``report``: the HTML page (the experiments are :mod:`llmqueue.experiments`).

The commands (``sweep``, ``reproduce``, ``report``) are in :mod:`llmqueue.cli`; the lab never
imports typer, nor rich at module level.
"""

from importlib import import_module

#: public name -> its module, imported on first use (the statistics need scipy)
_LAZY = {"BisectResult": "bisect", "BisectSpec": "bisect", "GrowthEstimate": "growth", "combine": "growth",
         "estimate_run": "growth", "RunPath": "paths", "Reference": "reference", "reference": "reference",
         "Verdict": "verdict", "compare_fluid": "verdict", "decide": "verdict", "tolerance_tokens": "verdict"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BisectResult", "BisectSpec", "GrowthEstimate", "combine", "estimate_run", "RunPath", "Reference",
           "reference", "Verdict", "compare_fluid", "decide", "tolerance_tokens"]
