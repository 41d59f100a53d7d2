"""Benchmark: are the stability verdicts right at 0.9 and 1.1 lambda* over 20 seeds?

For Sarathi-Serve and Orca on the Theorem 2 workload (100 + 100 tokens) and the Fig. 1 workload
(129 + 112 tokens), b_max 512, Poisson arrivals: one sweep per workload, 20 seeds, the default
horizon (8000 full batches, doubled while inconclusive up to 4x). Prints, per policy and rate,
how many seeds got the right verdict (stable at 0.9, unstable at 1.1), how many needed a longer
horizon, and in how many the fluid line max(0, lambda m - b_max/t(b_max)) lies inside the 95%
interval. Usage: python benchmarks/lab_verdicts.py [OUT_DIR] [--workers N]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from llmqueue.lab.backends import make_backend
from llmqueue.lab.progress import SweepProgress
from llmqueue.lab.spec import make_spec
from llmqueue.lab.sweep import run_sweep
from llmqueue.lab.sweep_plots import sweep_figures


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else None
    out = Path(args[0] if args else "bench-lab-verdicts")
    report = {}
    for scenario in ("theorem2", "fig1"):
        spec = make_spec(scenario, rates=[0.9, 1.1], policies=["sarathi", "orca"], seeds=list(range(1, 21)))
        t0 = time.monotonic()
        with SweepProgress(enabled=sys.stderr.isatty()) as progress:
            o = run_sweep(spec, out / scenario, make_backend("local", workers), progress)
        secs = time.monotonic() - t0
        sweep_figures(o, spec, out / scenario)
        for (pol, rel), g in o.points.groupby(["policy", "rate_rel"], sort=False):
            want = "stable" if rel < 1 else "unstable"
            key = f"{scenario} {pol} {rel:g} lambda*"
            report[key] = {"right": int((g["verdict"] == want).sum()), "seeds": len(g),
                           "verdicts": g["verdict"].value_counts().to_dict(),
                           "escalated": int((g["horizon_used_s"] > g["horizon_s"]).sum()),
                           "fluid_in_ci": int(g["fluid_in_ci"].sum()),
                           "mean_slope": float(g["slope"].mean()), "fluid_line": float(g["fluid_line"].iloc[0])}
            r = report[key]
            print(f"{key:32s} right {r['right']}/{r['seeds']}  {r['verdicts']}  escalated {r['escalated']}  "
                  f"fluid in CI {r['fluid_in_ci']}/{r['seeds']}  mean slope {r['mean_slope']:+.1f} "
                  f"(fluid {r['fluid_line']:+.1f})")
        print(f"{scenario}: {len(o.points)} points in {secs:.0f} s")
    (out / "verdicts.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
