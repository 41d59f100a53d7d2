"""Batch times of real GPUs without a GPU: ``aiconfigurator-core``'s op-level performance databases.

:class:`GpuProfileBatchTime` is a composition-dependent batch-time model: the time of one
iteration from its prefill tokens, its decode requests and their KV context, as estimated by
the ``aiconfigurator-core`` package (Apache-2.0; measured per-kernel databases for A100, H100,
H200, B200, L40S ... under vLLM, SGLang and TensorRT-LLM). It is an optional extra
(``pip install 'llmqueue[gpu]'``); the scenario syntax is ``batch_time: {model: gpu-profile,
model_id: llama-3.1-8b, gpu: h100, backend: vllm, tp: 1}``.

How a batch is mapped onto the package's step estimates:

- prefill only: ``predict_prefill_latency(1, prefill)`` (one chunk of that many tokens);
- decode only: ``decode_step_latency(decodes, isl, 2)``, where the package's decode context is
  ``isl + osl // 2 + 1``; ``isl`` is set so that it equals the batch's mean context per decode;
- mixed: ``mixed_step_latency(prefill, decodes, isl, 2)`` with the same ``isl``.

Estimates are cached by shape; the mean context is rounded to a grid (1/32 of its power of two)
so that a simulator asking for millions of iterations makes a few thousand queries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from .batch_time import BatchTimeModel

GPU_EXTRA_MISSING = ("the gpu-profile batch time needs aiconfigurator-core, an optional extra: install it "
                     "with `pip install 'llmqueue[gpu]'` (or `pip install aiconfigurator-core`)")

#: Short model names -> the package's bundled model configs.
MODELS = {
    "llama-3.1-8b": "meta-llama/Meta-Llama-3.1-8B",
    "llama-3.1-70b": "meta-llama/Meta-Llama-3.1-70B",
    "llama-3.1-405b": "meta-llama/Meta-Llama-3.1-405B",
    "qwen3-8b": "Qwen/Qwen3-8B",
    "qwen3-32b": "Qwen/Qwen3-32B",
}

#: Short GPU names -> the package's systems (those with data; a100 is the SXM 80 GB part).
GPUS = {"a100": "a100_sxm", "h100": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm", "l40s": "l40s"}

BACKENDS = ("vllm", "sglang", "trtllm")


def gpu_extra_available() -> bool:
    """Whether aiconfigurator-core can be imported."""
    try:
        import aiconfigurator_core  # noqa: F401
    except ImportError:
        return False
    return True


_ENGINES: dict[tuple[str, str, str, int], Any] = {}


def _engine(model_id: str, gpu: str, backend: str, tp: int) -> Any:
    key = (model_id, gpu, backend, tp)
    if key not in _ENGINES:
        try:
            from aiconfigurator_core.sdk.engine import EngineHandle
        except ImportError:
            raise ModuleNotFoundError(GPU_EXTRA_MISSING) from None
        for name in ("aiconfigurator_core", "aiconfigurator"):
            logging.getLogger(name).setLevel(logging.ERROR)
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)           # compile logs many low-fidelity fallback warnings
        try:
            _ENGINES[key] = EngineHandle.compile(MODELS.get(model_id, model_id), GPUS.get(gpu, gpu), backend,
                                                 tp_size=tp)
        except Exception as e:  # the package raises its own errors for unknown models and systems
            raise ValueError(f"gpu-profile: no performance data for model {model_id!r} on {gpu!r} with "
                             f"{backend} tp={tp}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
        finally:
            logging.disable(previous)
    return _ENGINES[key]


def _round_context(c: float) -> int:
    """The mean context on a grid of 1/32 of its power of two (at most ~3% off)."""
    if c <= 64:
        return max(1, int(round(c)))
    step = 2 ** (int(math.log2(c)) - 5)
    return int(round(c / step) * step)


@dataclass(frozen=True)
class GpuProfileBatchTime(BatchTimeModel):
    """t(prefill, decode, context) of ``model_id`` on ``tp`` GPUs of type ``gpu`` (see the module
    docstring). ``context`` is the batch's total KV context: for each request in it, its tokens
    in cache after the step."""

    model_id: str
    gpu: str
    backend: str = "vllm"
    tp: int = 1
    _cache: dict[tuple[int, int, int], float] = field(default_factory=dict, compare=False, repr=False,
                                                      hash=False)

    load_only = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"gpu-profile backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.tp < 1:
            raise ValueError(f"gpu-profile tp must be >= 1, got {self.tp}")

    def handle(self) -> Any:
        """The package's compiled engine (compiled once per process and configuration)."""
        return _engine(self.model_id, self.gpu, self.backend, self.tp)

    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        p, d = int(prefill_tokens), int(decode_tokens)
        if p + d <= 0:
            return self.duration(0, 1, 1)
        ctx = 0
        if d > 0:
            per = (context_tokens - p) / d if context_tokens > p else context_tokens / d
            ctx = _round_context(max(per, 1.0))
        key = (p, d, ctx)
        t = self._cache.get(key)
        if t is None:
            t = self._query(p, d, ctx) / 1e3
            self._cache[key] = t
        return t

    def _query(self, p: int, d: int, ctx: int) -> float:
        h = self.handle()
        if d == 0:
            return float(h.predict_prefill_latency(1, p))
        isl = max(1, ctx - 2)                  # the package's decode context is isl + osl // 2 + 1
        if p == 0:
            return float(h.decode_step_latency(d, isl, 2))
        return float(h.mixed_step_latency(p, d, isl, 2))

    def describe(self) -> str:
        return f"gpu-profile {self.model_id} on {self.tp}x {self.gpu} ({self.backend}, aiconfigurator-core)"
