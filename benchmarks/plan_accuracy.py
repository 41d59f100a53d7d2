"""How close `llmqueue plan`'s goodput is to a brute-force search, screened and refined.

    PYTHONPATH=src python benchmarks/plan_accuracy.py                 # 9 configurations, ~30 min on 2 cores
    PYTHONPATH=src python benchmarks/plan_accuracy.py --fast          # 3 configurations, shorter reference
    PYTHONPATH=src python benchmarks/plan_accuracy.py --reference F   # reuse (or save) the reference in F

Reference (brute force) for each configuration: 4 seeds x 100,000 requests pooled (the first 10%
of each run left out), in two independent seed sets; in each, a bisection to 0.25% gives a
centre, then every rate of a 0.25% grid from 0.98x to 1.02x of it is simulated and the highest
rate meeting the SLOs is kept; the reference is the mean of the two sets (their difference is
printed: the reference's own noise). The planner runs at its defaults (PlanSpec) on 4 other seeds
per configuration: the screening search (``--requests``) and, from its answer, the refining
search (``--refine-requests``) that `plan` runs for its contenders; the error is
(planner - reference) / reference for each.

Sample: six configurations of the Fig. 1 workload under p99 TTFT <= 1 s and p99 TPOT <= 160 ms
(different policies, budgets and batch limits), and three the defaults were not tuned on: random
lengths (prompt uniform 40-400, decode geometric mean 90) under p90 TTFT <= 400 ms, p99 TPOT <=
120 ms, and the same under an attainment target (95% of requests within TTFT 600 ms and TPOT 150 ms).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from llmqueue.lab.plan import PlanSpec, build_engine, goodput, probe
from llmqueue.lab.plan.goodput import run_task
from llmqueue.lab.plan.output import label
from llmqueue.lab.plan.spec import config_id

FIG1 = {"scenario": "fig1", "slos": {"p99_ttft_ms": 1000.0, "p99_tpot_ms": 160.0}}
RANDOM_YAML = """name: random-lengths
engine: {policy: sarathi, token_budget: 512, batch_time: {model: staircase, c_ms: 11.28, a_ms: 35.47, b0: 128}}
workload:
  arrival: {process: poisson, rate: 5.0}
  prompt_tokens: {dist: uniform, low: 40, high: 400}
  decode_tokens: {dist: geometric, mean: 90}
  num_requests: 1000
"""

SAMPLE = [
    (FIG1, {"policy": "sarathi", "token_budget": 512, "max_batch_size": None}),
    (FIG1, {"policy": "sarathi", "token_budget": 256, "max_batch_size": 32}),
    (FIG1, {"policy": "orca", "token_budget": 1024, "max_batch_size": 64}),
    (FIG1, {"policy": "orca", "token_budget": 384, "max_batch_size": None}),
    (FIG1, {"policy": "vllm", "token_budget": 256, "max_batch_size": None}),
    (FIG1, {"policy": "vllm", "token_budget": 896, "max_batch_size": 128}),
    ("random", {"policy": "sarathi", "token_budget": 384, "max_batch_size": None}),
    ("random", {"policy": "orca", "token_budget": 768, "max_batch_size": 96}),
    ("attain", {"policy": "sarathi", "token_budget": 640, "max_batch_size": 128}),
]


def spec_kwargs(kind, scenario_file: str) -> dict:
    if kind == "random":
        return {"scenario": scenario_file, "slos": {"p90_ttft_ms": 400.0, "p99_tpot_ms": 120.0}}
    if kind == "attain":
        return {"scenario": scenario_file, "slos": {"p99_ttft_ms": 600.0, "p99_tpot_ms": 150.0},
                "attainment": 0.95}
    return dict(kind)


def brute_force(kw: dict, params: dict, seeds: tuple[int, ...], n: int) -> float:
    spec = PlanSpec(**kw, num_requests=n, seeds=seeds, resolution=0.0025, warmup=0.1, refine=0)
    e = build_engine(spec, params)
    centre = goodput(spec, e)["max_rate"]
    best = 0.0
    for r in np.arange(0.98, 1.0201, 0.0025) * centre:
        if r >= e.lambda_star * e.replicas * (1 - 1e-9):
            break
        if probe(spec, e, float(r))[0]:
            best = float(r)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true", help="3 configurations, 4 x 20,000-request reference")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--reference", type=Path, help="JSON file: read the reference from it if present, "
                    "else compute it and save it there")
    a = ap.parse_args()
    sample, n_ref = ([SAMPLE[0], SAMPLE[4], SAMPLE[6]], 20_000) if a.fast else (SAMPLE, 100_000)
    tmp = tempfile.mkdtemp()
    scenario_file = str(Path(tmp) / "random-lengths.yaml")
    Path(scenario_file).write_text(RANDOM_YAML)
    default = PlanSpec("fig1", slos=FIG1["slos"])
    print(f"planner defaults: screening {default.num_requests} requests, refining {default.refine_requests_for(True)}, "
          f"seeds {default.seeds}, warmup {default.warmup}, resolution {default.resolution} / "
          f"{default.refine_resolution}")
    saved = json.loads(a.reference.read_text()) if a.reference and a.reference.exists() else {}
    errors: dict[str, list[float]] = {"screened": [], "refined": []}
    seconds = {"screened": 0.0, "refined": 0.0}
    for kind, params in sample:
        kw = spec_kwargs(kind, scenario_file)
        key = f"{kind if isinstance(kind, str) else 'fig1'} {config_id(params)} {n_ref}"
        t0 = time.monotonic()
        if key in saved:
            refs = saved[key]
        else:
            refs = [brute_force(kw, params, s, n_ref) for s in ((101, 102, 103, 104), (105, 106, 107, 108))]
            saved[key] = refs
            if a.reference:
                a.reference.write_text(json.dumps(saved, indent=1))
        ref = float(np.mean(refs))
        got: dict[str, list[float]] = {"screened": [], "refined": []}
        for trial in range(a.trials):
            spec = PlanSpec(**kw, seeds=(1 + 10 * trial,))
            t1 = time.monotonic()
            g = goodput(spec, build_engine(spec, params))["max_rate"]
            t2 = time.monotonic()
            r = run_task(spec.to_dict(), [params], [g])[config_id(params)]["max_rate"]
            seconds["screened"] += t2 - t1
            seconds["refined"] += time.monotonic() - t2
            got["screened"].append(g)
            got["refined"].append(r)
        spread = 100 * abs(refs[0] - refs[1]) / ref
        name = f"{kind if isinstance(kind, str) else 'fig1'}: {label(params)}"
        print(f"  {name:30s} reference {ref:.4g} req/s (sets differ by {spread:.2f}%), {time.monotonic() - t0:.0f} s")
        for k, vals in got.items():
            err = [(g - ref) / ref for g in vals]
            errors[k] += err
            print(f"    {k:8s} {', '.join(f'{g:.4g}' for g in vals)}: errors "
                  f"{', '.join(f'{100 * x:+.2f}%' for x in err)}", flush=True)
    n = len(sample) * a.trials
    for k, err in errors.items():
        e = np.abs(err)
        print(f"{k}: {len(sample)} configurations x {a.trials} seeds: worst error {100 * e.max():.2f}%, "
              f"mean error {100 * np.mean(err):+.2f}%, sd {100 * np.std(err):.2f}%, "
              f"{seconds[k] / n:.2f} s per search")
    return 0


if __name__ == "__main__":
    sys.exit(main())
