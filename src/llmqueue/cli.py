"""The ``llmqueue`` command line: simulate a scenario, compute its capacity, check a policy.

Flags follow vLLM's names where the meaning matches (--request-rate, --burstiness,
--max-num-batched-tokens, --max-num-seqs, --num-prompts). Every user error exits with status 2
and one message; nothing prints a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .analysis.batches import format_plan
from .analysis.theory import capacity_report
from .policies import check_work_conserving, make_policy, policy_names
from .scenario import UNSET, Scenario, ScenarioError, builtin_scenarios, check_runnable, load_scenario
from .sim.engine import EngineStalled
from .sim.output import write_run
from .sim.simulate import simulate as run_simulation
from .workload import TraceError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Queueing theory of LLM serving: simulate batch schedulers and compute their capacity.")
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

SCENARIO_HELP = "Scenario YAML file, or a built-in name (see `llmqueue scenarios`). Default: fig1."


def _fail(msg: str) -> None:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _overrides(policy, token_budget, max_batch_size, request_rate, burstiness, num_requests,
               duration, seed, trace) -> dict:
    o = {"engine.policy": policy, "engine.token_budget": token_budget,
         "engine.max_batch_size": max_batch_size, "workload.num_requests": num_requests,
         "workload.duration_s": duration, "seed": seed}
    if request_rate is not None:
        o["workload.arrival.rate"] = request_rate
    if burstiness is not None:
        o["workload.arrival.process"] = "gamma"
        o["workload.arrival.burstiness"] = burstiness
    if trace is not None:
        # replay replaces the generated stream (initial requests stay)
        o["workload.trace"] = str(Path(trace).resolve())
        for key in ("arrival", "prompt_tokens", "decode_tokens"):
            o[f"workload.{key}"] = UNSET
        for key, flag in (("num_requests", num_requests), ("duration_s", duration)):
            if flag is None:
                o[f"workload.{key}"] = UNSET
    return o


def _load(scenario, overrides) -> Scenario:
    try:
        return load_scenario(scenario, overrides)
    except (ScenarioError, TraceError, ValueError, OSError) as e:
        _fail(str(e))
        raise  # unreachable


# Shared options --------------------------------------------------------------------------------
_policy = typer.Option(None, "--policy", help=f"Scheduling policy: {' | '.join(policy_names())}.")
_budget = typer.Option(None, "--token-budget", "--max-num-batched-tokens", help="Token budget b_max per batch.")
_kmax = typer.Option(None, "--max-batch-size", "--max-num-seqs", help="Batch-size limit k_max (requests per batch).")
_rate = typer.Option(None, "--request-rate", help="Arrival rate in requests/s.")
_burst = typer.Option(None, "--burstiness", help="Gamma arrivals with this shape (1 = Poisson).")
_nreq = typer.Option(None, "--num-requests", "--num-prompts", help="Number of generated requests.")
_dur = typer.Option(None, "--duration", help="Generate arrivals for this many seconds.")
_seed = typer.Option(None, "--seed", help="Seed of the run's random streams.")
_trace = typer.Option(None, "--trace", help="Replay a trace (our CSV or the Azure format) instead.")


@app.command()
def simulate(
    scenario: Optional[str] = typer.Argument(None, help=SCENARIO_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="Write requests.csv, iterations.csv, summary.json here."),
    policy: Optional[str] = _policy, token_budget: Optional[int] = _budget,
    max_batch_size: Optional[int] = _kmax, request_rate: Optional[float] = _rate,
    burstiness: Optional[float] = _burst, num_requests: Optional[int] = _nreq,
    duration: Optional[float] = _dur, seed: Optional[int] = _seed, trace: Optional[Path] = _trace,
    horizon: Optional[float] = typer.Option(None, "--horizon", help="Stop the simulation at this time (s)."),
    show_batches: int = typer.Option(0, "--show-batches", help="Print the first N batches (Fig. 8 notation)."),
    composition: bool = typer.Option(False, "--composition", help="Record which request got what (batches.csv)."),
) -> None:
    """Simulate one engine on a scenario and summarise throughput, backlog and latency."""
    from .network.commands import is_network_scenario, simulate_command
    if is_network_scenario(scenario):
        return simulate_command(scenario, out=out, seed=seed, horizon=horizon, duration=duration, unsupported={
            "--policy": policy, "--token-budget": token_budget, "--max-batch-size": max_batch_size,
            "--request-rate": request_rate, "--burstiness": burstiness, "--num-requests": num_requests,
            "--trace": trace, "--show-batches": show_batches, "--composition": composition})
    ov = _overrides(policy, token_budget, max_batch_size, request_rate, burstiness, num_requests,
                    duration, seed, trace)
    ov["simulation.horizon_s"] = horizon
    if composition or show_batches:
        ov["simulation.record_composition"] = True
    sc = _load(scenario, ov)
    try:
        wl = sc.build_workload()
        check_runnable(sc, wl)
        pol, bt = sc.build_policy(), sc.build_batch_time()
        if sc.engine.memory is not None:
            from .sim.memory_output import write_memory_run
            res = run_simulation(pol, bt, wl.requests(sc.seed), memory=sc.engine.memory.build(),
                                 horizon=sc.simulation.horizon_s,
                                 record_composition=sc.simulation.record_composition)
            writer = write_memory_run
        else:
            res = run_simulation(pol, bt, wl.requests(sc.seed), horizon=sc.simulation.horizon_s,
                                 record_composition=sc.simulation.record_composition)
            writer = write_run
    except (ScenarioError, TraceError, EngineStalled, ValueError, OSError) as e:
        _fail(str(e))
        return
    cap = _capacity(sc, wl)
    s = res.summary()
    if out is not None:
        writer(res, out, extra={"scenario": sc.model_dump(mode="json"),
                                "capacity": cap.to_dict() if cap is not None else None})
    _print_summary(sc, s, cap)
    if show_batches and res.compositions is not None:
        console.print(f"\nfirst {min(show_batches, len(res.compositions))} batches:")
        for i, (plan, row) in enumerate(zip(res.compositions[:show_batches], res.iterations.itertuples())):
            console.print(f"  {i:4d}  t={row.start_time:.6g}s  {format_plan(plan, res.labels)}", highlight=False)
    if out is not None:
        console.print(f"\nwrote {out}/requests.csv, iterations.csv, summary.json"
                      + (", batches.csv" if res.compositions is not None else ""), highlight=False)


def _capacity(sc: Scenario, wl):
    """The theory for this scenario, or None when it has no arriving stream (only initial requests)."""
    if wl.mean_prompt_tokens + wl.mean_decode_tokens <= 0:
        return None
    rate = wl.arrival_rate if 0 < wl.arrival_rate < float("inf") else None
    return capacity_report(sc.build_policy(), sc.build_batch_time(), wl.mean_prompt_tokens,
                           wl.mean_decode_tokens, rate, wl.max_prompt_tokens)


def _print_summary(sc: Scenario, s: dict, cap) -> None:
    def ms(x):
        return "n/a" if x is None else f"{x:.1f} ms"
    console.print(f"[bold]{s['policy']}[/], {s['batch_time']}", highlight=False)
    console.print(f"requests: {s['num_requests']} ({s['completed']} completed, {s['in_system_at_end']} "
                  f"in system at the end) over {s['duration_s']:.6g} s, {s['num_iterations']} iterations",
                  highlight=False)
    theory = "" if cap is None else (
        f" (capacity {cap.capacity_tokens_per_s:.6g} tokens/s, lambda* {cap.lambda_star:.6g} req/s"
        + (f", rho {cap.rho:.4f}" if cap.rho is not None else "") + ")")
    console.print(f"throughput: {s['token_throughput']:.6g} tokens/s, {s['request_throughput']:.6g} "
                  f"requests/s{theory}", highlight=False)
    console.print(f"backlog: max {s['max_backlog_tokens']} tokens, at the end {s['final_backlog_tokens']}; "
                  f"max in system {s['max_num_in_system']}; tokens conserved: {s['tokens_conserved']}",
                  highlight=False)
    console.print(f"TTFT p50 {ms(s['p50_ttft_ms'])} p99 {ms(s['p99_ttft_ms'])} | ITL p50 {ms(s['p50_itl_ms'])} "
                  f"p99 {ms(s['p99_itl_ms'])} | E2E p50 {ms(s['p50_e2el_ms'])} p99 {ms(s['p99_e2el_ms'])}",
                  highlight=False)
    if "preemptions" in s:
        console.print(f"KV memory: peak {s['peak_kv_tokens']} tokens; {s['preemptions']} preemptions, "
                      f"{s['tokens_recomputed']} tokens recomputed", highlight=False)
    if "prefix_cache_hit_tokens" in s:
        console.print(f"prefix cache: {s['prefix_cache_hit_tokens']} prompt tokens hit "
                      f"(hit rate {s['prefix_cache_hit_rate']:.1%})", highlight=False)


@app.command()
def capacity(
    scenario: Optional[str] = typer.Argument(None, help=SCENARIO_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    policy: Optional[str] = _policy, token_budget: Optional[int] = _budget,
    max_batch_size: Optional[int] = _kmax, request_rate: Optional[float] = _rate,
    trace: Optional[Path] = _trace,
) -> None:
    """Capacity b_max/t(b_max), lambda*, rho, the fluid slope and the theory's verdict."""
    from .network.commands import capacity_command, is_network_scenario
    if is_network_scenario(scenario):
        return capacity_command(scenario, as_json=as_json, unsupported={
            "--policy": policy, "--token-budget": token_budget, "--max-batch-size": max_batch_size,
            "--request-rate": request_rate, "--trace": trace})
    sc = _load(scenario, _overrides(policy, token_budget, max_batch_size, request_rate, None, None,
                                    None, None, trace))
    try:
        wl = sc.build_workload()
        cap = _capacity(sc, wl)
    except (ScenarioError, TraceError, ValueError, OSError) as e:
        _fail(str(e))
        return
    if cap is None:
        _fail("this scenario has no arriving requests (only initial ones): capacity theory needs an "
              "arrival process or a trace")
    if as_json:
        out = cap.to_dict()
        if sc.engine.memory is not None and wl.prompt_tokens is not None and wl.decode_tokens is not None:
            from .memory.theory import memory_capacity
            cfg = sc.engine.memory.build()
            out["memory"] = memory_capacity(sc.build_policy(), sc.build_batch_time(), cfg.capacity_tokens,
                                            cfg.block_size, wl.prompt_tokens, wl.decode_tokens,
                                            cap.arrival_rate).to_dict()
        print(json.dumps(out, indent=2))
        return
    console.print(f"[bold]{sc.build_policy().describe()}[/], {cap.batch_time}", highlight=False)
    console.print(f"workload: mean {cap.mean_prompt_tokens:.6g} prompt + {cap.mean_decode_tokens:.6g} decode "
                  f"tokens per request" + (f", {cap.arrival_rate:.6g} requests/s" if cap.arrival_rate else ""),
                  highlight=False)
    console.print(f"full batch: t({cap.token_budget}) = {cap.batch_time_full_s * 1e3:.6g} ms; capacity "
                  f"b_max/t(b_max) = {cap.capacity_tokens_per_s:.6g} tokens/s", highlight=False)
    console.print(f"lambda* = {cap.lambda_star:.6g} requests/s", highlight=False)
    if cap.rho is not None:
        console.print(f"rho = {cap.rho:.6g}; fluid slope = {cap.fluid_slope_tokens_per_s:.6g} tokens/s "
                      f"({'backlog grows' if cap.rho > 1 else 'negative: drains'})", highlight=False)
    if cap.region_scale is not None:
        console.print(f"k_max stability region: the load can be scaled by {cap.region_scale:.6g}", highlight=False)
    console.print("verdict:" + (f" [bold]{cap.stable}[/]" if cap.stable else ""))
    for line in cap.verdict:
        console.print(f"  - {line}", highlight=False)
    if sc.engine.memory is not None:
        _print_memory_capacity(sc, wl)


def _print_memory_capacity(sc: Scenario, wl) -> None:
    """The KV arithmetic and which resource binds (spec section 6)."""
    from .memory.theory import memory_capacity
    mem = sc.engine.memory
    console.print("KV-cache memory:")
    budget = mem.budget()
    for line in (budget.lines() if budget is not None else [f"capacity {mem.capacity_tokens} tokens (given)"]):
        console.print(f"  {line}", highlight=False)
    if wl.prompt_tokens is None or wl.decode_tokens is None:
        console.print("  the memory bound needs length distributions (not computed for a replayed trace)")
        return
    cfg = mem.build()
    mc = memory_capacity(sc.build_policy(), sc.build_batch_time(), cfg.capacity_tokens, cfg.block_size,
                         wl.prompt_tokens, wl.decode_tokens,
                         wl.arrival_rate if 0 < wl.arrival_rate < float("inf") else None)
    for line in mc.lines():
        console.print(f"  {line}", highlight=False)


@app.command("check-policy")
def check_policy(
    policy: str = typer.Argument(..., help=f"Built-in policy: {' | '.join(policy_names())}."),
    token_budget: int = typer.Option(16, "--token-budget", "--max-num-batched-tokens"),
    max_batch_size: Optional[int] = typer.Option(None, "--max-batch-size", "--max-num-seqs"),
    examples: int = typer.Option(2000, "--examples", help="Random engine states to try."),
) -> None:
    """Search random engine states for one where the policy is not work-conserving."""
    try:
        pol = make_policy(policy, token_budget, max_batch_size)
    except ValueError as e:
        _fail(str(e))
        return
    cex = check_work_conserving(pol, max_examples=examples)
    if cex is None:
        console.print(f"{pol.describe()}: work-conserving on all {examples} states tried.")
    else:
        console.print(f"{pol.describe()}: NOT work-conserving. Smallest counterexample:\n{cex}", highlight=False)


@app.command()
def scenarios() -> None:
    """List the built-in scenarios."""
    for name, path in sorted(builtin_scenarios().items()):
        first = next((l[2:].strip() for l in path.read_text().splitlines() if l.startswith("# ")), "")
        console.print(f"[bold]{name:10s}[/] {first}", highlight=False)


def _register_extensions() -> None:
    """Add the commands that other subpackages define (each module has ``register(app)``)."""
    import importlib
    for mod in _EXTENSIONS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name is not None and mod.startswith(e.name):
                continue  # that subpackage is not part of this build
            raise
        module.register(app)


_EXTENSIONS = ("llmqueue.lab.commands", "llmqueue.network.commands", "llmqueue.real.commands",
               "llmqueue.memory.commands")
_register_extensions()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
