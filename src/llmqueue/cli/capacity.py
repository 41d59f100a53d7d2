"""``llmqueue capacity``: Theorem 2 for a scenario (or the traffic equations for a network), with
the KV-memory bound when the scenario models memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from . import options as opt
from .output import console, fail, print_json


def capacity(
    scenario: Optional[str] = typer.Argument(None, help=opt.SCENARIO_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    policy: Optional[str] = opt.policy, token_budget: Optional[int] = opt.token_budget,
    max_batch_size: Optional[int] = opt.max_batch_size, request_rate: Optional[float] = opt.request_rate,
    trace: Optional[Path] = opt.trace,
) -> None:
    """Capacity b_max/t(b_max), lambda*, rho, the fluid slope and the theory's verdict."""
    from ..config import is_network_scenario
    if scenario is not None and is_network_scenario(scenario):
        from .network import capacity_network_scenario
        from .simulate import NETWORK_FLAGS
        opt.refuse_flags({"--policy": policy, "--token-budget": token_budget, "--max-batch-size": max_batch_size,
                          "--request-rate": request_rate, "--trace": trace}, NETWORK_FLAGS)
        capacity_network_scenario(scenario, as_json=as_json)
        return
    from ..config import load_scenario
    from ..memory.theory import combined_capacity

    sc = load_scenario(scenario, opt.overrides(policy, token_budget, max_batch_size, request_rate, trace=trace))
    wl = sc.build_workload()
    pol = sc.build_policy()
    cc = combined_capacity(pol, sc.build_batch_time(), wl, sc.build_memory(), seed=sc.seed)
    if cc is None:
        fail("this scenario has no arriving requests (only initial ones): capacity theory needs an "
             "arrival process or a trace")
    cap = cc.compute
    if as_json:
        out = cap.to_dict()
        out["combined"] = {k: v for k, v in cc.to_dict().items() if k not in ("compute", "memory")}
        if cc.memory is not None:
            out["memory"] = cc.memory.to_dict()
        print_json(out)
        return
    console.print(f"[bold]{escape(pol.describe())}[/], {escape(cap.batch_time)}", highlight=False)
    console.print(f"workload: mean {wl.mean_prompt_tokens:.6g} prompt + {cap.mean_decode_tokens:.6g} decode "
                  f"tokens per request" + (f", {cap.arrival_rate:.6g} requests/s" if cap.arrival_rate else ""),
                  highlight=False)
    console.print(f"full batch: t({cap.token_budget}) = {cap.batch_time_full_s * 1e3:.6g} ms; capacity "
                  f"b_max/t(b_max) = {cap.capacity_tokens_per_s:.6g} tokens/s", highlight=False)
    console.print(f"lambda* = {cc.lambda_star:.6g} requests/s ({cc.binding} bound binds"
                  + (f"; compute {cap.lambda_star:.6g}, memory {cc.memory.lambda_memory:.6g}"
                     if cc.memory is not None else "") + ")", highlight=False)
    if cc.rho is not None:
        assert cap.rho is not None
        fluid = (f"fluid slope = {cap.fluid_slope_tokens_per_s:.6g} tokens/s "
                 f"({'backlog grows' if cap.rho > 1 else 'negative: drains'})")
        console.print(f"rho = {cc.rho:.6g}; " + (fluid if cc.binding == "compute" else
                                                 f"against the compute bound alone rho = {cap.rho:.6g} "
                                                 f"(Theorem 2's fluid slope does not apply when memory binds)"),
                      highlight=False)
    if cap.region_scale is not None:
        console.print(f"k_max stability region: the load can be scaled by {cap.region_scale:.6g}", highlight=False)
    console.print("verdict:" + (f" [bold]{escape(cc.stable)}[/]" if cc.stable else ""))
    combined = sc.build_memory() is not None      # more than Theorem 2 to combine
    for line in cc.verdict if combined else []:
        console.print(f"  - {line}", highlight=False, markup=False)
    if cap.verdict and combined:
        console.print("  - the compute bound alone (Theorem 2):")
    for line in cap.verdict:
        console.print(f"{'    ' if combined else '  '}- {line}", highlight=False, markup=False)
    if sc.single_specs()[0].memory is not None:
        _print_memory_capacity(sc, cc.memory)


def _print_memory_capacity(sc: Any, mc: Any) -> None:
    """The KV arithmetic and which resource binds."""
    mem = sc.engine.memory
    console.print("KV-cache memory:")
    budget = mem.budget()
    for line in (budget.lines() if budget is not None else [f"capacity {mem.capacity_tokens} tokens (given)"]):
        console.print(f"  {line}", highlight=False, markup=False)
    if mc is None:
        console.print("  the memory bound needs length distributions or sampled requests (not computed)")
        return
    for line in mc.lines():
        console.print(f"  {line}", highlight=False, markup=False)
