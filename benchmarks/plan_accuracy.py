"""How close `llmqueue plan`'s goodput, at its default settings, is to a brute-force search.

    PYTHONPATH=src python benchmarks/plan_accuracy.py            # 6 configurations, ~10 min
    PYTHONPATH=src python benchmarks/plan_accuracy.py --fast     # 2 configurations, shorter reference

Reference (brute force) for each configuration: runs of 50,000 requests (the first 10% left
out), 3 seeds pooled, in two independent seed sets; in each, a bisection to 0.25% gives a
centre, then every rate of a 0.25% grid from 0.95x to 1.05x of it is simulated and the highest
rate meeting the SLOs is kept; the reference is the mean of the two sets (their difference is
printed: the reference's own noise). The planner is run at its defaults (PlanSpec's
num_requests, seeds, warmup, resolution) on 4 independent seeds per configuration; the error is
(planner - reference) / reference. Fig. 1 workload, SLOs p99 TTFT <= 1000 ms, p99 TPOT <= 160 ms.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from llmqueue.lab.plan import PlanSpec, build_engine, goodput, probe
from llmqueue.lab.plan.output import label

SLOS = {"p99_ttft_ms": 1000.0, "p99_tpot_ms": 160.0}

#: Different policies, budgets and batch limits, all with a positive goodput under SLOS.
SAMPLE = [
    {"policy": "sarathi", "token_budget": 512, "max_batch_size": None},
    {"policy": "sarathi", "token_budget": 256, "max_batch_size": 32},
    {"policy": "orca", "token_budget": 1024, "max_batch_size": 64},
    {"policy": "orca", "token_budget": 384, "max_batch_size": None},
    {"policy": "vllm", "token_budget": 256, "max_batch_size": None},
    {"policy": "vllm", "token_budget": 896, "max_batch_size": 128},
]


def brute_force(params: dict, seeds: tuple[int, ...], n: int) -> float:
    spec = PlanSpec("fig1", slos=SLOS, num_requests=n, seeds=seeds, resolution=0.0025, warmup=0.1)
    e = build_engine(spec, params)
    centre = goodput(spec, e)["max_rate"]
    best = 0.0
    for r in np.arange(0.95, 1.0501, 0.0025) * centre:
        if r >= e.lambda_star * e.replicas * (1 - 1e-9):
            break
        if probe(spec, e, float(r))[0]:
            best = float(r)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--trials", type=int, default=4)
    a = ap.parse_args()
    sample, n_ref = (SAMPLE[:2], 10_000) if a.fast else (SAMPLE, 50_000)
    default = PlanSpec("fig1", slos=SLOS)
    print(f"planner defaults: {default.num_requests} requests, seeds {default.seeds}, warmup {default.warmup}, "
          f"resolution {default.resolution}")
    errors = []
    for params in sample:
        t0 = time.monotonic()
        refs = [brute_force(params, s, n_ref) for s in ((101, 102, 103), (104, 105, 106))]
        ref = float(np.mean(refs))
        got = []
        for trial in range(a.trials):
            spec = PlanSpec("fig1", slos=SLOS, seeds=tuple(s + 10 * trial for s in default.seeds))
            got.append(goodput(spec, build_engine(spec, params))["max_rate"])
        err = [(g - ref) / ref for g in got]
        errors += err
        spread = 100 * abs(refs[0] - refs[1]) / ref
        print(f"  {label(params):24s} reference {ref:.4g} req/s (sets differ by {spread:.2f}%)"
              f"  planner {', '.join(f'{g:.4g}' for g in got)}: errors "
              f"{', '.join(f'{100 * x:+.1f}%' for x in err)}  ({time.monotonic() - t0:.0f} s)", flush=True)
    e = np.abs(errors)
    print(f"{len(sample)} configurations x {a.trials} seeds: worst error {100 * e.max():.2f}%, "
          f"mean |error| {100 * e.mean():.2f}%, sd {100 * np.std(errors):.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
