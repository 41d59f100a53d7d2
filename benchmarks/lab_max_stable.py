"""Benchmark: each policy's empirical maximum stable rate against lambda*, by bisection.

The four policies on the Fig. 1 workload (129 + 112 tokens) and the Theorem 2 workload
(100 + 100 tokens), b_max 512, Poisson arrivals; bisection on [0.01, 1.5] lambda*, 3 seeds
per probe, relative resolution 1%, the default horizon with up to two doublings for an
inconclusive probe. Prints each bracket in % of lambda*. Usage:
python benchmarks/lab_max_stable.py [OUT_DIR] [--workers N] [--scenario fig1|theorem2]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from llmqueue.lab.backends import make_backend
from llmqueue.lab.bisect import BisectSpec
from llmqueue.lab.progress import SweepProgress
from llmqueue.lab.spec import make_spec
from llmqueue.lab.sweep import run_sweep
from llmqueue.lab.sweep_plots import sweep_figures

POLICIES = ["fastertransformer", "vllm", "orca", "sarathi"]


def main() -> None:
    argv = sys.argv[1:]
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else None
    only = argv[argv.index("--scenario") + 1] if "--scenario" in argv else None
    args = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or not argv[i - 1].startswith("--"))]
    out = Path(args[0] if args else "bench-lab-max-stable")
    report = {}
    for scenario in ("fig1", "theorem2"):
        if only and scenario != only:
            continue
        spec = make_spec(scenario, rates=[0.9, 1.1], policies=POLICIES, seeds=[1, 2, 3], bisect=BisectSpec())
        t0 = time.monotonic()
        with SweepProgress(enabled=sys.stderr.isatty()) as progress:
            o = run_sweep(spec, out / scenario, make_backend("local", workers), progress)
        secs = time.monotonic() - t0
        sweep_figures(o, spec, out / scenario)
        for (pol, _b, _k), res in o.results.items():
            d = {"stable_pct": None if res.stable_rel is None else 100 * (res.stable_rel - 1),
                 "unstable_pct": None if res.unstable_rel is None else 100 * (res.unstable_rel - 1),
                 "upper_kind": res.upper_kind, "lambda_star": res.lambda_star, "probes": len(res.probes),
                 "description": res.describe()}
            report[f"{scenario} {pol}"] = d
            print(f"{scenario:9s} {pol:18s} {res.describe()}  ({len(res.probes)} probes)")
        print(f"{scenario}: {o.computed} points computed in {secs:.0f} s")
    (out / "max_stable.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
