"""Device and number format: CUDA in bfloat16 when torch sees a GPU, else the CPU in float32.

Every torch-backed object takes ``device`` and ``dtype`` explicitly and this module only picks
the defaults, so the CPU and GPU runs go through the same code. ``synchronize`` makes wall-clock
timing honest on CUDA, where kernels run asynchronously.
"""

from __future__ import annotations

import torch

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is ``cuda`` when available, else ``cpu``; asking for cuda without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """None or ``auto``: bfloat16 on CUDA, float32 on the CPU."""
    if name in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use auto, {', '.join(_DTYPES)}") from None


def set_threads(n: int | None) -> int:
    """Fix the CPU threads torch uses (None keeps torch's choice); returns the number in force."""
    if n is not None:
        if n < 1:
            raise ValueError(f"threads must be >= 1, got {n}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a wall-clock reading after it includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe(device: torch.device, dtype: torch.dtype) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"cuda ({name}), {str(dtype).removeprefix('torch.')}"
    return f"cpu ({torch.get_num_threads()} threads), {str(dtype).removeprefix('torch.')}"
