"""``llmqueue kv-capacity``: the KV-cache arithmetic for a model and GPU.

The memory experiments run through ``llmqueue reproduce memory-bound``."""

from __future__ import annotations

import typer


def kv_capacity(
    model: str = typer.Option("llama-3-8b", "--model", help="Model preset."),
    gpu: str = typer.Option("a100-80gb", "--gpu", help="GPU preset."),
    num_gpus: int = typer.Option(1, "--num-gpus", "--tensor-parallel-size",
                                 help="GPUs the model is sharded over (tensor parallel); their memory adds up."),
    utilization: float = typer.Option(0.9, "--gpu-memory-utilization",
                                      help="Fraction of GPU memory the engine may use (vLLM's flag)."),
    reserve_gib: float = typer.Option(0.0, "--reserve-gib", help="Activations and context, GiB."),
    block_size: int = typer.Option(16, "--block-size", help="KV-cache block size in tokens (capacity is "
                                   "rounded down to whole blocks)."),
) -> None:
    """KV-cache capacity in tokens of a model on a GPU, with the arithmetic."""
    from ..memory.hardware import GPUS, MODELS, kv_budget
    b = kv_budget(model, gpu, num_gpus=num_gpus, utilization=utilization, reserve_gib=reserve_gib,
                  block_size=block_size)
    typer.echo(f"{b.model.name} on {num_gpus} x {b.gpu.name} (presets: models {', '.join(MODELS)}; "
               f"GPUs {', '.join(GPUS)})")
    for line in b.lines():
        typer.echo(f"  {line}")
