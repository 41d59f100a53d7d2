"""What the command line prints: the one failure printer, and the summary of a single-engine run.

Every user error ends in :func:`fail`: one line ``error: <message>`` on stderr, the message
markup-escaped (a scenario named ``nope[/]x`` is text, not rich markup), exit status 2, never a
traceback. :class:`~llmqueue.cli.app.FailurePrintingGroup` routes the library's errors here.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)
#: the lab's tables: wide enough when the output is a file or a pipe (rich would assume 80 columns)
wide_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)

#: the exit status of every user error
USER_ERROR = 2


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` (escaped, on one line) to stderr and exit with status 2."""
    one_line = " ".join(str(message).split("\n")).strip() or "failed"
    err_console.print(f"[bold red]error:[/] {escape(one_line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(USER_ERROR)


def print_json(obj: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no markup."""
    import json
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f} ms"


def print_summary(s: dict, cap: Any) -> None:
    """The summary of one engine's run (``simulate``, ``serve-bench``), with the theory beside it."""
    console.print(f"[bold]{escape(s['policy'])}[/], {escape(s['batch_time'])}", highlight=False)
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
    console.print(f"TTFT p50 {_ms(s['p50_ttft_ms'])} p99 {_ms(s['p99_ttft_ms'])} | ITL p50 {_ms(s['p50_itl_ms'])} "
                  f"p99 {_ms(s['p99_itl_ms'])} | E2E p50 {_ms(s['p50_e2el_ms'])} p99 {_ms(s['p99_e2el_ms'])}",
                  highlight=False)
    if "preemptions" in s:
        console.print(f"KV memory: peak {s['peak_kv_tokens']} tokens; {s['preemptions']} preemptions, "
                      f"{s['tokens_recomputed']} tokens recomputed", highlight=False)
    if "prefix_cache_hit_tokens" in s:
        console.print(f"prefix cache: {s['prefix_cache_hit_tokens']} prompt tokens hit "
                      f"(hit rate {s['prefix_cache_hit_rate']:.1%})", highlight=False)
