"""KV-cache memory: the memory configuration, GPU/model KV budgets, memory-aware policies and the
memory-aware capacity theory (spec section 6). See docs/memory.md. The engine core
(:mod:`llmqueue.engine`) runs the memory; ``simulate(..., memory=...)`` is the entry point.

The KV manager itself is part of the engine core (:mod:`llmqueue.engine.kv`). Names are loaded
on first use, so importing :mod:`llmqueue.memory.config` imports nothing else.
"""

from importlib import import_module

_WHERE = {
    "MemoryConfig": ".config", "GPUS": ".hardware", "MODELS": ".hardware",
    "kv_budget": ".hardware", "ThresholdAdmission": "..policies.memory_aware",
    "VLLMV1": "..policies.memory_aware",
    "kv_token_iterations": ".theory", "memory_capacity": ".theory",
    "MemoryView": "..engine.view",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
