"""What is built in: ``llmqueue scenarios`` and ``llmqueue check-policy``."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from ..policies import policy_names
from .output import console


def check_policy(
    policy: str = typer.Argument(..., help=f"Built-in policy: {' | '.join(policy_names())}."),
    token_budget: int = typer.Option(16, "--token-budget", "--max-num-batched-tokens"),
    max_batch_size: Optional[int] = typer.Option(None, "--max-batch-size", "--max-num-seqs"),
    examples: int = typer.Option(2000, "--examples", help="Random engine states to try."),
) -> None:
    """Search random engine states for one where the policy is not work-conserving."""
    from ..policies import check_work_conserving, find_idle_budget_witness, make_policy
    pol = make_policy(policy, token_budget, max_batch_size)
    idle = find_idle_budget_witness(pol)
    cex = check_work_conserving(pol, max_examples=examples)
    if idle is None and cex is None:
        console.print(f"{pol.describe()}: work-conserving on all {examples} states tried.", markup=False)
        return
    console.print(f"{pol.describe()}: NOT work-conserving.", highlight=False, markup=False)
    if idle is not None:
        console.print(f"Budget left idle while decodes wait:\n{idle}", highlight=False, markup=False)
    if cex is not None:
        console.print(f"Smallest counterexample of the random search:\n{cex}", highlight=False, markup=False)


def scenarios() -> None:
    """List the built-in scenarios."""
    from ..config import builtin_scenarios
    for name, path in sorted(builtin_scenarios().items()):
        first = next((line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# ")), "")
        console.print(f"[bold]{escape(f'{name:10s}')}[/] {escape(first)}", highlight=False)
