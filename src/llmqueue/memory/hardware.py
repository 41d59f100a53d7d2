"""KV-cache capacity from a model and a GPU: the arithmetic ``llmqueue capacity`` shows.

A token's KV cache holds one key and one value vector per layer and KV head:
``kv_bytes_per_token = 2 * layers * kv_heads * head_dim * dtype_bytes``. The memory left for
the cache is ``num_gpus * gpu_memory * utilization - weights - reserve`` (vLLM's
``gpu_memory_utilization``; ``reserve`` stands for activations and the CUDA context, which
vLLM measures by profiling and we take as a given number). The capacity in tokens is that
memory over the bytes per token, rounded down to whole blocks. Tensor parallelism splits both
the weights and the KV heads over ``num_gpus`` GPUs, so the formula holds for the whole group.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024 ** 3


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer, as far as its memory is concerned."""

    name: str
    params: float            # number of parameters
    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2     # bf16 / fp16

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @property
    def weight_bytes(self) -> float:
        return self.params * self.dtype_bytes


@dataclass(frozen=True)
class GPUSpec:
    """One accelerator: its memory and its host link (for swapping KV to host memory)."""

    name: str
    memory_bytes: float
    host_link_bytes_per_s: float   # effective host <-> device bandwidth (PCIe)


#: Public architecture numbers (config.json of each model); params rounded to 3 digits.
MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    ModelSpec("llama-3-8b", 8.03e9, 32, 8, 128),
    ModelSpec("llama-2-7b", 6.74e9, 32, 32, 128),
    ModelSpec("mistral-7b", 7.24e9, 32, 8, 128),
    ModelSpec("codellama-34b", 33.7e9, 48, 8, 128),
    ModelSpec("llama-2-70b", 69.0e9, 80, 8, 128),
)}

#: Memory as the driver reports it; host links at about 80% of PCIe peak.
GPUS: dict[str, GPUSpec] = {g.name: g for g in (
    GPUSpec("a100-40gb", 40 * GIB, 25e9),
    GPUSpec("a100-80gb", 80 * GIB, 25e9),
    GPUSpec("h100-80gb", 80 * GIB, 50e9),
    GPUSpec("h200-141gb", 141e9, 50e9),
    GPUSpec("l40s-48gb", 48 * GIB, 25e9),
)}


def _lookup(table: dict, kind: str, name: str):
    try:
        return table[name.lower()]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {', '.join(table)}") from None


def get_model(name: str) -> ModelSpec:
    return _lookup(MODELS, "model", name)


def get_gpu(name: str) -> GPUSpec:
    return _lookup(GPUS, "gpu", name)


@dataclass(frozen=True)
class KVBudget:
    """The result of the arithmetic, with every intermediate number kept for display."""

    model: ModelSpec
    gpu: GPUSpec
    num_gpus: int
    utilization: float
    reserve_bytes: float
    block_size: int
    usable_bytes: float
    kv_bytes: float
    capacity_tokens: int
    swap_s_per_token: float

    def lines(self) -> list[str]:
        """The arithmetic in words, one step a line."""
        m, g = self.model, self.gpu
        return [
            f"KV bytes/token = 2 x {m.layers} layers x {m.kv_heads} KV heads x {m.head_dim} head dim x "
            f"{m.dtype_bytes} B = {m.kv_bytes_per_token} B ({m.kv_bytes_per_token / 1024:g} KiB)",
            f"usable memory = {self.num_gpus} x {g.memory_bytes / GIB:.4g} GiB x {self.utilization:g} = "
            f"{self.usable_bytes / GIB:.4g} GiB",
            f"KV memory = usable - weights {m.weight_bytes / GIB:.4g} GiB ({m.params / 1e9:g}B params x "
            f"{m.dtype_bytes} B) - reserve {self.reserve_bytes / GIB:.4g} GiB = {self.kv_bytes / GIB:.4g} GiB",
            f"KV capacity = {self.kv_bytes / GIB:.4g} GiB / {m.kv_bytes_per_token} B = {self.capacity_tokens} "
            f"tokens ({self.capacity_tokens // self.block_size} blocks of {self.block_size})",
            f"swap cost = {m.kv_bytes_per_token} B / ({self.num_gpus} x {g.host_link_bytes_per_s / 1e9:g} GB/s) = "
            f"{self.swap_s_per_token * 1e6:.4g} us per token each way",
        ]


def kv_budget(model: ModelSpec | str, gpu: GPUSpec | str, *, num_gpus: int = 1,
              utilization: float = 0.9, reserve_gib: float = 0.0, block_size: int = 16) -> KVBudget:
    """KV capacity of ``model`` served on ``num_gpus`` x ``gpu``; an error when the weights do not fit."""
    m = get_model(model) if isinstance(model, str) else model
    g = get_gpu(gpu) if isinstance(gpu, str) else gpu
    if not isinstance(num_gpus, int) or num_gpus < 1:
        raise ValueError(f"num_gpus must be a positive integer, got {num_gpus!r}")
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1], got {utilization}")
    if reserve_gib < 0:
        raise ValueError(f"reserve_gib must be >= 0, got {reserve_gib}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    usable = num_gpus * g.memory_bytes * utilization
    kv = usable - m.weight_bytes - reserve_gib * GIB
    if kv <= m.kv_bytes_per_token * block_size:
        raise ValueError(
            f"{m.name} does not fit on {num_gpus} x {g.name} at utilization {utilization:g}: weights "
            f"{m.weight_bytes / GIB:.4g} GiB + reserve {reserve_gib:g} GiB leave no room for a KV block "
            f"in {usable / GIB:.4g} GiB. Use more GPUs (tensor parallel) or a larger GPU.")
    blocks = int(kv // (m.kv_bytes_per_token * block_size))
    return KVBudget(m, g, num_gpus, utilization, reserve_gib * GIB, block_size, usable, kv,
                    blocks * block_size, m.kv_bytes_per_token / (num_gpus * g.host_link_bytes_per_s))
