"""How fast `llmqueue plan` is on 1,000 configurations, and whether its best one holds up.

    PYTHONPATH=src python benchmarks/plan_speed.py            # 1,000 configurations, 2 workers
    PYTHONPATH=src python benchmarks/plan_speed.py --fast     # 16 configurations (seconds)

1. Plans the Fig. 1 workload (CodeLlama-34B on an A100, 129 + 112 tokens) over a grid of
   policy x token_budget x max_batch_size with a progress line, at the planner's defaults
   (PlanSpec: screening runs of 4,000 requests, refining runs of 100,000 for the contenders), and
   reports the time of each stage, the searches and simulations run.
2. Replicas behind the router (the network layer, the engine core) on a smaller grid.
3. The best configuration: does it meet the SLOs at 0.9x its goodput and miss at 1.15x, on
   other seeds, with runs as long as the refining ones?

benchmarks/plan_accuracy.py measures the goodputs against a brute-force search.
"""

from __future__ import annotations

import argparse
import sys
import time

from llmqueue.lab.plan import PlanSpec, build_engine, parse_grid, plan_backend, probe, run_plan
from llmqueue.lab.plan.output import label

SLOS = {"p99_ttft_ms": 1000.0, "p99_tpot_ms": 160.0}


def grid(fast: bool) -> list[str]:
    """One engine per configuration: 4 policies x 25 budgets x 10 batch limits = 1,000."""
    if fast:
        return ["policy=sarathi,vllm,orca,fastertransformer", "token_budget=256,512", "max_batch_size=none,64"]
    budgets = ",".join(str(b) for b in range(128, 128 + 25 * 64, 64))
    return ["policy=sarathi,orca,vllm,fastertransformer", f"token_budget={budgets}",
            "max_batch_size=none,8,16,24,32,48,64,96,128,256"]


#: Replicas behind the router run on the network layer (the engine core, ~40x slower per run than
#: the fast core): timed separately.
REPLICA_GRID = ["policy=sarathi,vllm", "token_budget=256,512", "max_batch_size=none,64", "replicas=1,2,3,4"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    spec = PlanSpec("fig1", slos=SLOS, grid=parse_grid(grid(a.fast)))      # the default run length
    n = len(spec.configs())
    t0 = time.monotonic()
    last, stage = [0.0], [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if total > n and not stage[0]:
            stage[0] = now
        if now - last[0] > 5 or done == total:
            last[0] = now
            print(f"  {done}/{total} configurations, {now - t0:.0f} s", file=sys.stderr, flush=True)

    o = run_plan(spec, None, plan_backend("local", a.workers), on_done=progress)
    dt = time.monotonic() - t0
    probes = sum(r.get("probes", 0) for r in o.rows)
    refined = [r for r in o.rows if r.get("refined")]
    print(f"planned {n} configurations in {dt:.1f} s on {a.workers} workers: {o.computed} searches, {probes} "
          f"simulations; {len(refined)} configurations refined (screening ended at {stage[0] - t0:.1f} s)")
    print(f"best: {label(o.best['params'])} at {o.best['max_rate']:.4g} req/s (screened {o.best.get('screen_rate')}); "
          f"Pareto front of {len(o.pareto)}")
    for r in sorted(refined, key=lambda r: -r["max_rate"]):
        print(f"  refined {label(r['params']):24s} {r['screen_rate']:.4g} -> {r['max_rate']:.4g} req/s")
    t1 = time.monotonic()
    rspec = PlanSpec("fig1", slos=SLOS, grid=parse_grid(REPLICA_GRID if not a.fast else REPLICA_GRID[:2]
                                                         + ["replicas=1,2"]), num_requests=1000,
                     refine=4, refine_requests=10_000)
    ro = run_plan(rspec, None, plan_backend("local", a.workers))
    nr = len(rspec.configs())
    print(f"replicas: planned {nr} configurations in {time.monotonic() - t1:.1f} s on {a.workers} workers "
          f"(screening {rspec.num_requests:,} requests, refining {rspec.refine} a round with "
          f"{rspec.refine_requests:,})")
    for r in sorted(ro.rows, key=lambda r: tuple(str(v) for v in r["params"].values())):
        print(f"  {label(r['params']):28s} {r['max_rate']:.4g} req/s ({r['probes']} runs"
              f"{', refined' if r.get('refined') else ''})")
    check = PlanSpec(**{**spec.refining().to_dict(), "seeds": (21, 22)})
    e = build_engine(check, o.best["params"])
    at90, at115 = probe(check, e, 0.9 * o.best["max_rate"])[0], probe(check, e, 1.15 * o.best["max_rate"])[0]
    print(f"best at 0.9x goodput meets the SLOs: {at90}; at 1.15x: {at115}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
