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


#: Memory-aware policies (``llmqueue.memory``), built on demand: they read free KV memory when
#: the engine models it and behave like Sarathi-Serve when it does not.
MEMORY_POLICIES = ("vllm-v1", "threshold")


def policy_names() -> list[str]:
    return [*POLICIES, *MEMORY_POLICIES]


def make_policy(name: str, token_budget: int, max_batch_size: int | None = None) -> Policy:
    """Build a built-in policy by name; an unknown name lists the known ones."""
    key = name.lower()
    if key in MEMORY_POLICIES:
        from ..memory.policies import VLLMV1, ThresholdAdmission
        memory_cls: type[Policy] = VLLMV1 if key == "vllm-v1" else ThresholdAdmission
        return memory_cls(token_budget=token_budget, max_batch_size=max_batch_size)
    try:
        cls = POLICIES[key]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(policy_names())}") from None
    return cls(token_budget=token_budget, max_batch_size=max_batch_size)
