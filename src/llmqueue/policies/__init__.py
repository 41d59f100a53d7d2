"""Scheduling policies: pure functions from an engine view to a batch plan.

:mod:`.registry` declares every built-in policy once with its capabilities; every list of
policy names in the package derives from it.
"""

from typing import TYPE_CHECKING, Any

from .base import Policy, fill_chunks, fill_decodes, fill_whole_prefills
from .memory_aware import VLLMV1, ThresholdAdmission
from .priority import ClassPriority
from .real_systems import FasterTransformer, Orca, SarathiServe, VanillaVLLM
from .registry import (
    MEMORY_POLICIES,
    POLICIES,
    REGISTRY,
    PolicyInfo,
    has_fast_path,
    make_policy,
    policy_info,
    policy_infos,
    policy_names,
)

if TYPE_CHECKING:
    from .work_conservation import check_work_conserving, find_idle_budget_witness, is_work_conserving_plan


def __getattr__(name: str) -> Any:
    # the work-conservation checker needs hypothesis: imported on first use, not with the package
    if name in ("check_work_conserving", "find_idle_budget_witness", "is_work_conserving_plan"):
        from . import work_conservation
        return getattr(work_conservation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Policy", "fill_chunks", "fill_decodes", "fill_whole_prefills", "ClassPriority",
    "FasterTransformer", "Orca", "SarathiServe", "VanillaVLLM", "VLLMV1", "ThresholdAdmission",
    "POLICIES", "MEMORY_POLICIES", "REGISTRY", "PolicyInfo", "has_fast_path", "make_policy", "policy_info",
    "policy_infos", "policy_names", "check_work_conserving", "find_idle_budget_witness",
    "is_work_conserving_plan",
]
