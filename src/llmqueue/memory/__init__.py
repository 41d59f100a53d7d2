"""KV-cache memory: the memory configuration, the one KV manager (block tables, prefix caching,
eviction), memory-aware policies and the memory-aware capacity theory (spec section 6). See
docs/memory.md. The engine core (:mod:`llmqueue.engine`) runs the memory; ``simulate(...,
memory=...)`` is the entry point.

Names are loaded on first use, so importing :mod:`llmqueue.memory.config` or
:mod:`llmqueue.memory.kv` (as the engine core does) imports nothing else.
"""

from importlib import import_module

_WHERE = {
    "MemoryConfig": ".config", "KVManager": ".kv", "GPUS": ".hardware", "MODELS": ".hardware",
    "kv_budget": ".hardware", "ThresholdAdmission": ".policies", "VLLMV1": ".policies",
    "write_memory_run": ".output", "kv_token_iterations": ".theory", "memory_capacity": ".theory",
    "MemoryView": ".view",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
