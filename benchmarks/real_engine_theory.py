"""Check llmqueue's capacity theory on real computation (the real PyTorch engine on this machine).

Steps, all on one model and device:

1. profile the engine (grid of prefill / decode / context sizes up to the token budget) and fit
   the batch-time models; report R^2 and residuals;
2. lambda* of Sarathi-Serve from the best fit (Theorem 2, ``capacity_report``);
3. ask the simulator, with that profile, which of FasterTransformer and vanilla vLLM diverges at
   0.8 lambda*;
4. real runs: Sarathi at 0.8 and 1.2 lambda* (backlog slope against the fluid slope), the
   unstable whole-prefill policy at 0.8 lambda*;
5. the same trace at 0.7 lambda* simulated (with the profile) and run for real: throughput and
   mean E2E latency differences. As a diagnostic of the queueing model apart from the machine's
   speed drifting between profile and run, the trace is simulated again with the affine model
   fitted to the real run's own iterations.

``--rounds N`` repeats steps 1-5 (profile included) to show the spread on a shared machine.
Writes ``results.json`` and every run folder under ``--out``.

    python benchmarks/real_engine_theory.py --out runs/real-theory --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from llmqueue import make_policy, simulate
from llmqueue.analysis import capacity_report
from llmqueue.real.checkpoint import load_model
from llmqueue.real.compare import backlog_slope
from llmqueue.real.device import describe, resolve_device, resolve_dtype, set_threads
from llmqueue.real.fit import fit_all
from llmqueue.real.profiles import load_profile, save_profile
from llmqueue.real.profiling import Grid, build_profile, measure, warm_up
from llmqueue.real.runner import ModelRunner
from llmqueue.real.serve import serve
from llmqueue.sim.output import write_run
from llmqueue.workload import PoissonArrivals, Uniform, Workload

PROMPT, DECODE = Uniform(32, 96), Uniform(16, 48)


def workload(rate: float, duration: float) -> Workload:
    return Workload(arrival=PoissonArrivals(rate), prompt_tokens=PROMPT, decode_tokens=DECODE,
                    duration_s=duration)


def real_run(model, policy, rate, duration, seed, out: Path, bt, horizon=None) -> dict:
    runner = ModelRunner(model, num_blocks=4096, token_seed=seed)
    warm_up(runner, policy.token_budget)
    load_before = os.getloadavg()[0]
    res = serve(policy, workload(rate, duration).requests(seed), runner, horizon=horizon)
    s = write_run(res, out, extra={"engine": "real", "rate": rate})
    res.details.to_csv(out / "iterations_real.csv", index=False)
    it = res.iterations
    pred = np.array([bt.duration(int(p), int(d), int(c)) for p, d, c in
                     zip(it["prefill_tokens"], it["decode_tokens"], res.details["context_tokens"])])
    ratio = (it["end_time"] - it["start_time"]).to_numpy() / pred
    insitu = fit_all(it["prefill_tokens"], it["decode_tokens"], res.details["context_tokens"],
                     (it["end_time"] - it["start_time"]).to_numpy())["affine"]
    return {"summary": s, "slope": backlog_slope(res.iterations), "insitu_fit": insitu,
            "load_average_1min": [load_before, os.getloadavg()[0]],
            "iteration_time_over_model": {"median": float(np.median(ratio)), "p10": float(np.quantile(ratio, 0.1)),
                                          "p90": float(np.quantile(ratio, 0.9))},
            "mean_forward_ms": float(res.details["forward_s"].mean() * 1e3),
            "mean_schedule_ms": float(res.details["schedule_s"].mean() * 1e3)}


def sim_run(policy, bt, rate, duration, seed, out: Path | None = None, horizon=None) -> dict:
    res = simulate(policy, bt, workload(rate, duration).requests(seed), horizon=horizon)
    s = res.summary() if out is None else write_run(res, out, extra={"engine": "sim", "rate": rate})
    return {"summary": s, "slope": backlog_slope(res.iterations)}


def one_round(args, model, dev_desc, threads, k: int, out: Path) -> dict:
    budget = args.budget
    # prefill chunks after 0, 32 and 64 cached prompt tokens (Sarathi's chunks often continue a
    # partly prefilled prompt), and small decode-only batches (1-4 requests) at every context
    grid = Grid(prefill=(0, 16, 32, 64, 96, 128), decode=(0, 1, 2, 4, 8, 16, 32, 64, 96, 128),
                context=(16, 48, 96, 144), prefill_context=(0, 32, 64), repeats=args.profile_repeats,
                max_tokens=budget)
    t0 = time.perf_counter()
    raw = measure(ModelRunner(model, num_blocks=4096), grid, seed=k)
    prof = build_profile(raw, name=f"cpu-{model.cfg.name}", model_desc={"name": model.cfg.name},
                         device_desc=dev_desc, threads=threads, grid=grid)
    save_profile(prof, f"round{k}", out / "profiles")
    bt = load_profile(f"round{k}", directory=out / "profiles")
    sar = make_policy("sarathi", budget)
    cap = capacity_report(sar, bt, PROMPT.mean, DECODE.mean)
    lam = cap.lambda_star
    print(f"[round {k}] profile in {time.perf_counter() - t0:.0f}s, best fit {prof['recommended']} "
          f"R^2 {prof['fits'][prof['recommended']]['r2']:.4f}; lambda* = {lam:.3f} req/s", flush=True)
    r = {"profile": {key: prof[key] for key in ("noise", "recommended", "fits")}, "lambda_star": lam,
         "load_average_1min_at_profile": os.getloadavg()[0],
         "capacity_tokens_per_s": cap.capacity_tokens_per_s}
    T = args.duration
    # 3. which whole-prefill policy does the theory (the simulator with this profile) say diverges?
    preds = {}
    for name in ("fastertransformer", "vllm", "sarathi"):
        preds[name] = sim_run(make_policy(name, budget), bt, 0.8 * lam, T, seed=100 + k, horizon=T)["slope"]
    unstable = max(("fastertransformer", "vllm"), key=lambda n: preds[n])
    r["sim_slopes_at_0.8"] = preds
    r["unstable_policy"] = unstable
    fluid = capacity_report(sar, bt, PROMPT.mean, DECODE.mean, 1.2 * lam).fluid_slope_tokens_per_s
    r["fluid_slope_at_1.2"] = fluid
    # 4. real runs
    for frac in (0.8, 1.2):
        run = real_run(model, sar, frac * lam, T, 200 + k, out / f"round{k}" / f"sarathi-{frac}", bt,
                       horizon=T if frac > 1 else None)
        sim = sim_run(sar, bt, frac * lam, T, 200 + k, horizon=T if frac > 1 else None)
        r[f"sarathi_{frac}"] = {"real_slope": run["slope"], "sim_slope": sim["slope"],
                                "real_max_backlog": run["summary"]["max_backlog_tokens"],
                                "real_final_backlog": run["summary"]["final_backlog_tokens"],
                                "iteration_time_over_model": run["iteration_time_over_model"],
                                "load_average_1min": run["load_average_1min"],
                                "mean_forward_ms": run["mean_forward_ms"],
                                "mean_schedule_ms": run["mean_schedule_ms"]}
        print(f"[round {k}] sarathi {frac} lambda*: real slope {run['slope']:.1f} tokens/s (sim "
              f"{sim['slope']:.1f}, fluid at 1.2: {fluid:.1f}), max backlog "
              f"{run['summary']['max_backlog_tokens']}; iteration time / model: median "
              f"{run['iteration_time_over_model']['median']:.3f}", flush=True)
    run = real_run(model, make_policy(unstable, budget), 0.8 * lam, T, 300 + k,
                   out / f"round{k}" / f"{unstable}-0.8", bt, horizon=T)
    r[f"{unstable}_0.8"] = {"real_slope": run["slope"], "sim_slope": preds[unstable],
                           "real_final_backlog": run["summary"]["final_backlog_tokens"],
                           "iteration_time_over_model": run["iteration_time_over_model"],
                           "load_average_1min": run["load_average_1min"]}
    print(f"[round {k}] {unstable} 0.8 lambda*: real slope {run['slope']:.1f} tokens/s (sim "
          f"{preds[unstable]:.1f})", flush=True)
    # 5. the same trace at 0.7 lambda*, simulated and real
    rr = real_run(model, sar, 0.7 * lam, T, 400 + k, out / f"round{k}" / "real-0.7", bt)
    real = rr["summary"]
    sim = sim_run(sar, bt, 0.7 * lam, T, 400 + k, out / f"round{k}" / "sim-0.7")["summary"]
    diffs = {key: (real[key] - sim[key]) / sim[key] for key in
             ("token_throughput", "mean_e2el_ms", "p50_e2el_ms", "p99_e2el_ms", "mean_ttft_ms", "busy_fraction")}
    # diagnostic: the same simulation with the affine model fitted to the real run's own iterations
    insitu = rr["insitu_fit"]
    adj = sim_run(sar, insitu.build(), 0.7 * lam, T, 400 + k)["summary"]
    adj_diffs = {key: (real[key] - adj[key]) / adj[key] for key in diffs}
    factor = rr["iteration_time_over_model"]["median"]
    r["sim_vs_real_0.7"] = {"sim": {k2: sim[k2] for k2 in diffs}, "real": {k2: real[k2] for k2 in diffs},
                           "rel_diff": diffs, "iteration_time_over_model": rr["iteration_time_over_model"],
                           "load_average_1min": rr["load_average_1min"],
                           "insitu_fit": {"r2": insitu.r2, "params": insitu.params, "rel_diff": adj_diffs}}
    print(f"[round {k}] 0.7 lambda*: throughput real/sim {diffs['token_throughput']:+.1%}, mean E2E "
          f"{diffs['mean_e2el_ms']:+.1%} (sim {sim['mean_e2el_ms']:.0f} ms, real {real['mean_e2el_ms']:.0f} ms); "
          f"iteration time / model: median {factor:.3f}; sim with the run's own fit (R^2 {insitu.r2:.3f}): throughput "
          f"{adj_diffs['token_throughput']:+.1%}, mean E2E {adj_diffs['mean_e2el_ms']:+.1%}", flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/real-theory"))
    ap.add_argument("--model", default="small")
    ap.add_argument("--budget", type=int, default=128)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of arrivals per run")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--profile-repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    dt = resolve_dtype(None, dev)
    threads = set_threads(args.threads)
    model = load_model(args.model, seed=0, device=dev, dtype=dt)
    print(f"{model.cfg.describe()} on {describe(dev, dt)}; budget {args.budget}; prompts {PROMPT}, "
          f"decodes {DECODE}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rounds = [one_round(args, model, describe(dev, dt), threads, k, args.out) for k in range(args.rounds)]

    def spread(path):
        vals = []
        for r in rounds:
            x = r
            for p in path:
                x = x[p]
            vals.append(x)
        return {"values": vals, "mean": statistics.fmean(vals),
                "sd": statistics.stdev(vals) if len(vals) > 1 else None}

    result = {"model": model.cfg.describe(), "device": describe(dev, dt), "budget": args.budget,
              "workload": {"prompt": repr(PROMPT), "decode": repr(DECODE), "duration_s": args.duration},
              "rounds": rounds,
              "summary": {
                  "r2_affine": spread(["profile", "fits", "affine", "r2"]),
                  "r2_staircase": spread(["profile", "fits", "staircase", "r2"]),
                  "r2_piecewise_linear": spread(["profile", "fits", "piecewise_linear", "r2"]),
                  "lambda_star": spread(["lambda_star"]),
                  "slope_0.8": spread(["sarathi_0.8", "real_slope"]),
                  "slope_1.2": spread(["sarathi_1.2", "real_slope"]),
                  "fluid_1.2": spread(["fluid_slope_at_1.2"]),
                  "throughput_diff_0.7": spread(["sim_vs_real_0.7", "rel_diff", "token_throughput"]),
                  "e2e_diff_0.7": spread(["sim_vs_real_0.7", "rel_diff", "mean_e2el_ms"]),
                  "speed_factor_0.7": spread(["sim_vs_real_0.7", "iteration_time_over_model", "median"]),
                  "e2e_diff_0.7_insitu_fit": spread(["sim_vs_real_0.7", "insitu_fit", "rel_diff", "mean_e2el_ms"]),
              }}
    (args.out / "results.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(json.dumps(result["summary"], indent=2, default=float))


if __name__ == "__main__":
    main()
