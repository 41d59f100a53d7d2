"""Benchmark: the user's path (the CLI as a whole process), the fast core and the generic engine,
side by side on the same requests.

Sarathi-Serve and vanilla vLLM, b_max 512, the paper's staircase batch time, Poisson arrivals at
0.5 and 0.95 of lambda* (Theorem 2's boundary for the Fig. 1 mix), every request 129 prompt + 112
decode tokens, 10^4, 10^5 and 10^6 requests. The requests are those of the built-in ``fig1``
scenario at that rate (seed 1), so all three columns simulate exactly the same work:

* "e2e": ``python -m llmqueue simulate fig1 --policy P --num-requests N --request-rate R --out
  DIR`` as a child process: start-up, workload, simulation, records written (Parquet) and the
  summary. Wall seconds around the child, and the child's peak resident memory (measured by a
  wrapper process whose only child it is, through ``getrusage(RUSAGE_CHILDREN)``).
* "fast": the core alone, ``simulate_to_disk`` into a temporary Parquet directory, on the
  workload's arrays built beforehand;
* "generic": the reference engine, ``simulate(engine="generic")``, on the prebuilt list of
  Request objects; it runs only where it finishes within ``--generic-limit`` seconds (default
  60; stopped there and shown as "over 60s", and skipped when the previous size predicts more,
  shown as "skip <predicted seconds>").

"fast" and "generic" run in fresh processes after a 2,000-request warm-up, so neither pays for
imports and first calls; "s" is wall-clock time of the ``simulate`` call, "cpu" its CPU time,
"peak MB" the process's peak resident memory. The ratios are generic / fast and generic / e2e
(wall seconds), measured in the same run.

Usage: python benchmarks/sim_speed.py [--quick] [--json PATH] [--sizes N ...] [--policies P ...]
                                      [--loads L ...] [--generic-limit S]
  --quick   a tiny version (10^3 requests; fast and generic in this process), for tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

GENERIC_LIMIT_S = 60.0
PROMPT, DECODE, BUDGET = 129, 112, 512
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def rate(load: float) -> float:
    """``load`` x lambda* of the Fig. 1 mix, in requests/s, as the CLI flag gets it."""
    from llmqueue.engine import paper_staircase

    return load * BUDGET / paper_staircase().load_time(BUDGET) / (PROMPT + DECODE)


def workload(n: int, load: float):
    """The requests of ``llmqueue simulate fig1 --num-requests n --request-rate rate(load)``."""
    from llmqueue.workload import Fixed, PoissonArrivals, Workload

    return Workload(PoissonArrivals(float(repr(rate(load)))), Fixed(PROMPT), Fixed(DECODE), num_requests=n)


def run_one(engine: str, policy: str, load: float, n: int) -> dict:
    """One measurement of the core or the generic engine in this process."""
    from llmqueue.engine import paper_staircase
    from llmqueue.policies import make_policy
    from llmqueue.sim import simulate, simulate_to_disk
    from llmqueue.workload import RequestStream

    pol, bt = make_policy(policy, BUDGET), paper_staircase()

    def prebuilt(n_: int, seed: int):
        if engine == "fast":
            arrays = workload(n_, load).arrays(seed)
            return lambda: RequestStream(iter([arrays]))
        reqs = list(workload(n_, load).requests(seed))
        return lambda: reqs

    def once(reqs):
        if engine == "fast":
            with tempfile.TemporaryDirectory() as d:
                res = simulate_to_disk(pol, bt, reqs, d, engine="fast", backlog_resolution_s=10.0)
                return res.num_iterations, res.completed
        res = simulate(pol, bt, reqs, engine="generic")
        return len(res.iterations), int(res.requests["completion_time"].notna().sum())

    once(prebuilt(2000, 2)())                           # warm-up
    reqs = prebuilt(n, 1)()
    w0, c0 = time.perf_counter(), time.process_time()
    iterations, completed = once(reqs)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"engine": engine, "policy": policy, "load": load, "n": n, "seconds": wall,
            "cpu_seconds": cpu, "peak_mb": peak, "iterations": iterations, "completed": completed}


def e2e_command(policy: str, request_rate: float, n: int, out: str) -> list[str]:
    return [sys.executable, "-m", "llmqueue", "simulate", "fig1", "--policy", policy, "--num-requests",
            str(n), "--request-rate", repr(request_rate), "--out", out]


def run_e2e(policy: str, load: float, n: int, request_rate: float) -> dict:
    """The CLI command as a child process of this one. Call it from a small process with no
    other child (``--e2e``; it imports nothing of llmqueue): RUSAGE_CHILDREN is then the
    command's own peak, not one inherited from a larger parent (Linux carries the parent's peak
    into ru_maxrss across fork and exec)."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as d:
        cmd = e2e_command(policy, request_rate, n, d)
        w0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - w0
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
        summary = json.load(open(os.path.join(d, "summary.json")))
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"engine": "e2e", "policy": policy, "load": load, "n": n, "seconds": wall,
            "cpu_seconds": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024,
            "iterations": summary["num_iterations"], "completed": summary["completed"]}


def run_isolated(engine: str, policy: str, load: float, n: int, timeout: float | None) -> dict | None:
    """``run_one`` (or ``run_e2e``) in a fresh process; None if it ran past ``timeout``."""
    cmd = [sys.executable, __file__, "--one", engine, policy, str(load), str(n)]
    if engine == "e2e":
        cmd = [sys.executable, __file__, "--e2e", policy, str(load), str(n), repr(rate(load))]
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


def _print_row(policy: str, load: float, n: int, e2e: dict, fast: dict, gen: dict | None, note: str) -> None:
    up = lambda x: f"{gen['seconds'] / x['seconds']:.1f}x" if gen else ""  # noqa: E731
    e, f, g = _cell(e2e, ""), _cell(fast, ""), _cell(gen, note)
    print(f"{policy:8s} {load:5.2f} {n:9,d} | {e[0]:>6s} {e[3]:>7s} | {f[0]:>6s} {f[1]:>6s} {f[2]:>10s} "
          f"{f[3]:>7s} | {g[0]:>9s} {g[1]:>6s} {g[2]:>8s} {g[3]:>7s} | {up(fast):>8s} {up(e2e):>8s}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes; fast and generic in this process")
    ap.add_argument("--json", help="also write the measurements to this file")
    ap.add_argument("--sizes", type=int, nargs="+", help="numbers of requests (default 10^4 10^5 10^6)")
    ap.add_argument("--policies", nargs="+", default=["sarathi", "vllm"])
    ap.add_argument("--loads", type=float, nargs="+", default=[0.5, 0.95])
    ap.add_argument("--generic-limit", type=float, default=GENERIC_LIMIT_S,
                    help="seconds after which the generic engine is stopped (and larger sizes skipped)")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--e2e", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        e, p, load, n = a.one
        print(json.dumps(run_one(e, p, float(load), int(n))))
        return
    if a.e2e:
        p, load, n, r = a.e2e
        print(json.dumps(run_e2e(p, float(load), int(n), float(r))))
        return
    sizes = a.sizes or ([1000] if a.quick else [10_000, 100_000, 1_000_000])
    limit = a.generic_limit
    head = (f"{'policy':8s} {'load':>5s} {'requests':>9s} | {'e2e s':>6s} {'peak MB':>7s} | {'fast s':>6s} "
            f"{'cpu':>6s} {'req/s':>10s} {'peak MB':>7s} | {'generic s':>9s} {'cpu':>6s} {'req/s':>8s} "
            f"{'peak MB':>7s} | {'speed-up':>8s} {'(e2e)':>8s}")
    print(head)
    print("-" * len(head))
    rows = []
    for policy in a.policies:
        for load in a.loads:
            prev, stopped = None, False            # last generic measurement; ran out of time
            for n in sizes:
                e2e = run_isolated("e2e", policy, load, n, None)
                if a.quick:
                    fast, gen = run_one("fast", policy, load, n), run_one("generic", policy, load, n)
                    note = ""
                else:
                    fast = run_isolated("fast", policy, load, n, None)
                    predicted = prev["seconds"] * n / prev["n"] if prev else 0.0
                    if stopped:
                        gen, note = None, "skipped"
                    elif predicted > limit:
                        gen, note = None, f"skip {predicted:.0f}s"
                    else:
                        gen = run_isolated("generic", policy, load, n, limit)
                        note = f"over {limit:.0f}s"
                    stopped = gen is None
                    prev = gen
                rows.append({"e2e": e2e, "fast": fast, "generic": gen})
                _print_row(policy, load, n, e2e, fast, gen, note)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    sys.path.insert(0, SRC)                      # this checkout's llmqueue, as the e2e child gets
    main()
