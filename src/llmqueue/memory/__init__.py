"""KV-cache memory: a paged memory model, preemption (recompute, swap), memory-aware policies
and the memory-aware capacity theory (spec section 6). See docs/memory.md."""

from ..policies.memory_aware import VLLMV1, ThresholdAdmission
from .config import MemoryConfig
from .engine import MemorySimEngine
from .hardware import GPUS, MODELS, kv_budget
from .simulate import MemoryResult, simulate_with_memory, write_memory_run
from .theory import kv_token_iterations, memory_capacity
from .view import MemoryView

__all__ = ["MemoryConfig", "MemorySimEngine", "GPUS", "MODELS", "kv_budget", "ThresholdAdmission", "VLLMV1",
           "MemoryResult", "simulate_with_memory", "write_memory_run", "kv_token_iterations",
           "memory_capacity", "MemoryView"]
