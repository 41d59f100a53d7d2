"""Policy names as used in scenario files and on the command line."""

from __future__ import annotations

from .base import Policy
from .real_systems import FasterTransformer, Orca, SarathiServe, VanillaVLLM

POLICIES: dict[str, type[Policy]] = {
    "fastertransformer": FasterTransformer,
    "vllm": VanillaVLLM,
    "orca": Orca,
    "sarathi": SarathiServe,
}


def make_policy(name: str, token_budget: int, max_batch_size: int | None = None) -> Policy:
    """Build a built-in policy by name; an unknown name lists the known ones."""
    try:
        cls = POLICIES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}") from None
    return cls(token_budget=token_budget, max_batch_size=max_batch_size)
