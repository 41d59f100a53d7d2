"""What is built in: ``llmqueue scenarios`` and ``llmqueue check-policy``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..policies import policy_names
from .output import console, fail

#: the scenario keys whose value is a file path, resolved against the scenario's folder
_PATH_KEY = re.compile(r"^(\s*(?:-\s+)?(?:trace|file):\s*)([^\s#{}\[\],]+)(\s*(?:#.*)?)$")


def standalone_yaml(path: Path) -> str:
    """A built-in scenario's text, its comments kept, with relative file paths (a trace, a lengths
    file) made absolute, so that the printed YAML saved anywhere loads to the same scenario."""
    lines = []
    for line in path.read_text().splitlines():
        m = _PATH_KEY.match(line)
        if m and not Path(m.group(2)).expanduser().is_absolute():
            line = f"{m.group(1)}{(path.parent / m.group(2)).resolve()}{m.group(3)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def check_policy(
    policy: str = typer.Argument(..., help=f"Built-in policy: {' | '.join(policy_names())}."),
    token_budget: int = typer.Option(16, "--token-budget", "--max-num-batched-tokens",
                                     help="Token budget b_max per batch (small budgets find a state sooner)."),
    max_batch_size: Optional[int] = typer.Option(None, "--max-batch-size", "--max-num-seqs",
                                                 help="Batch-size limit k_max (default: none)."),
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


def scenarios(
    name: Optional[str] = typer.Argument(None, help="Print this built-in scenario's YAML (a starting point "
                                         "for your own: llmqueue scenarios fig1 > my.yaml)."),
) -> None:
    """List the built-in scenarios, or print one's YAML."""
    from ..config import builtin_scenarios
    if name is not None:
        path = builtin_scenarios().get(name)
        if path is None:
            fail(f"unknown built-in scenario {name!r}; choose one of {', '.join(sorted(builtin_scenarios()))}")
        sys.stdout.write(standalone_yaml(path))
        return
    for name, path in sorted(builtin_scenarios().items()):
        first = next((line[2:].strip() for line in path.read_text().splitlines() if line.startswith("# ")), "")
        console.print(f"[bold]{escape(f'{name:10s}')}[/] {escape(first)}", highlight=False)
