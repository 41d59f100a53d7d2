"""Benchmark: the fast simulation core against the generic engine, on the same traces.

Sarathi-Serve and vanilla vLLM, b_max 512, the paper's staircase batch time, Poisson arrivals at
0.5 and 0.95 of lambda* (Theorem 2's boundary for the Fig. 1 mix), every request 129 prompt + 112
decode tokens, 10^4, 10^5 and 10^6 requests. The fast core streams its records to a temporary
Parquet directory (``simulate_to_disk``); the generic engine keeps its run in memory
(``simulate(engine="generic")``), and runs only where it finishes within a minute (it is stopped
at 60 s and shown as "over 60s", and skipped when the previous size predicts more, shown as
"skip <predicted seconds>"). Each measurement runs in a fresh
process, so "peak MB" is that process's peak resident memory (Python, numpy, pandas, pyarrow and
the prebuilt list of requests included). Times are seconds of the ``simulate`` call alone: the
trace is built beforehand, and each engine first runs a 2,000-request warm-up so that neither
pays for imports and first calls. "s" is wall-clock time, "cpu" the process's CPU time for the
same call (steadier when other work shares the machine); the speed-up is given for both.

Usage: python benchmarks/sim_speed.py [--quick] [--json PATH]
  --quick   a tiny version (10^3 requests, in this process, no isolation), for tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

GENERIC_LIMIT_S = 60.0
PROMPT, DECODE, BUDGET = 129, 112, 512


def trace(n: int, load: float, seed: int = 1):
    """n requests of the Fig. 1 mix, Poisson arrivals at ``load`` x lambda*."""
    import numpy as np

    from llmqueue.engine import Request, paper_staircase

    lam_star = BUDGET / paper_staircase().load_time(BUDGET) / (PROMPT + DECODE)
    t = np.cumsum(np.random.default_rng(seed).exponential(1.0 / (load * lam_star), n)).tolist()
    return [Request(i, t[i], PROMPT, DECODE) for i in range(n)]


def run_one(engine: str, policy: str, load: float, n: int) -> dict:
    """One measurement in this process: seconds, CPU seconds, peak MB, iterations."""
    from llmqueue.engine import paper_staircase
    from llmqueue.policies import make_policy
    from llmqueue.sim import simulate, simulate_to_disk

    pol, bt = make_policy(policy, BUDGET), paper_staircase()

    def once(reqs):
        if engine == "fast":
            with tempfile.TemporaryDirectory() as d:
                res = simulate_to_disk(pol, bt, reqs, d, engine="fast", backlog_resolution_s=10.0)
                return res.num_iterations, res.completed
        res = simulate(pol, bt, reqs, engine="generic")
        return len(res.iterations), int(res.requests["completion_time"].notna().sum())

    once(trace(2000, load, seed=2))                     # warm-up
    reqs = trace(n, load)
    w0, c0 = time.perf_counter(), time.process_time()
    iterations, completed = once(reqs)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"engine": engine, "policy": policy, "load": load, "n": n, "seconds": wall,
            "cpu_seconds": cpu, "peak_mb": peak, "iterations": iterations, "completed": completed}


def run_isolated(engine: str, policy: str, load: float, n: int, timeout: float | None) -> dict | None:
    """``run_one`` in a fresh process; None if it ran past ``timeout``."""
    cmd = [sys.executable, __file__, "--one", engine, policy, str(load), str(n)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{e.stderr}") from None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cell(r: dict | None, note: str) -> tuple[str, str, str, str]:
    if r is None:
        return (note, "", "", "")
    return (f"{r['seconds']:.2f}", f"{r['cpu_seconds']:.2f}", f"{r['n'] / r['seconds']:,.0f}",
            f"{r['peak_mb']:.0f}")


def _print_row(policy: str, load: float, n: int, fast: dict, gen: dict | None, note: str) -> None:
    speedup = f"{gen['seconds'] / fast['seconds']:.1f}x" if gen else ""
    cpu_up = f"{gen['cpu_seconds'] / fast['cpu_seconds']:.1f}x" if gen else ""
    f, g = _cell(fast, ""), _cell(gen, note)
    print(f"{policy:8s} {load:5.2f} {n:9,d} | {f[0]:>7s} {f[1]:>6s} {f[2]:>10s} {f[3]:>7s} | "
          f"{g[0]:>9s} {g[1]:>6s} {g[2]:>8s} {g[3]:>7s} | {speedup:>8s} {cpu_up:>7s}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, in this process")
    ap.add_argument("--json", help="also write the measurements to this file")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        e, p, load, n = a.one
        print(json.dumps(run_one(e, p, float(load), int(n))))
        return
    sizes = [1000] if a.quick else [10_000, 100_000, 1_000_000]
    head = (f"{'policy':8s} {'load':>5s} {'requests':>9s} | {'fast s':>7s} {'cpu':>6s} {'req/s':>10s} "
            f"{'peak MB':>7s} | {'generic s':>9s} {'cpu':>6s} {'req/s':>8s} {'peak MB':>7s} | "
            f"{'speed-up':>8s} {'(cpu)':>7s}")
    print(head)
    print("-" * len(head))
    rows = []
    for policy in ("sarathi", "vllm"):
        for load in (0.5, 0.95):
            prev, stopped = None, False            # last generic measurement; ran out of time
            for n in sizes:
                if a.quick:
                    fast, gen = run_one("fast", policy, load, n), run_one("generic", policy, load, n)
                    note = ""
                else:
                    fast = run_isolated("fast", policy, load, n, None)
                    predicted = prev["seconds"] * n / prev["n"] if prev else 0.0
                    if stopped:
                        gen, note = None, "skipped"
                    elif predicted > GENERIC_LIMIT_S:
                        gen, note = None, f"skip {predicted:.0f}s"
                    else:
                        gen = run_isolated("generic", policy, load, n, GENERIC_LIMIT_S)
                        note = f"over {GENERIC_LIMIT_S:.0f}s"
                    stopped = gen is None
                    prev = gen
                rows.append({"fast": fast, "generic": gen})
                _print_row(policy, load, n, fast, gen, note)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
