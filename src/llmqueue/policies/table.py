"""The policy table of the documentation, generated from the registry.

README.md holds it between ``<!-- policy-table -->`` and ``<!-- /policy-table -->``; a test
checks that every such block in README.md and docs/*.md equals :func:`policy_table`, so the
documented names and capabilities cannot drift from :data:`~.registry.REGISTRY`.
"""

from __future__ import annotations

from .registry import policy_infos

BEGIN, END = "<!-- policy-table -->", "<!-- /policy-table -->"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def policy_table() -> str:
    """The markdown table: name, what one batch holds, and the declared capabilities."""
    lines = ["| policy | one batch | mixes prefill and decode | work-conserving | reads KV memory | fast path |",
             "|---|---|---|---|---|---|"]
    for i in policy_infos():
        lines.append(f"| `{i.name}` ({i.label}) | {i.description} | {_yes(i.mixes_prefill_decode)} | "
                     f"{_yes(i.work_conserving)} | {_yes(i.memory_aware)} | {_yes(i.fast_path)} |")
    return "\n".join(lines)


def policy_blocks(text: str) -> list[str]:
    """The contents of every generated block in a markdown text (stripped)."""
    out, rest = [], text
    while BEGIN in rest:
        _, _, rest = rest.partition(BEGIN)
        block, found, rest = rest.partition(END)
        if not found:
            raise ValueError(f"{BEGIN} without {END}")
        out.append(block.strip())
    return out
