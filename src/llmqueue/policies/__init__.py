"""Scheduling policies: pure functions from an engine view to a batch plan."""

from .base import Policy, fill_chunks, fill_decodes, fill_whole_prefills
from .priority import ClassPriority
from .real_systems import FasterTransformer, Orca, SarathiServe, VanillaVLLM
from .registry import MEMORY_POLICIES, POLICIES, make_policy, policy_names
from .work_conservation import check_work_conserving, is_work_conserving_plan

__all__ = [
    "Policy", "fill_chunks", "fill_decodes", "fill_whole_prefills", "ClassPriority",
    "FasterTransformer", "Orca", "SarathiServe", "VanillaVLLM", "POLICIES", "MEMORY_POLICIES",
    "make_policy", "policy_names",
    "check_work_conserving", "is_work_conserving_plan",
]
