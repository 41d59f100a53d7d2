"""Batch-time models t(batch): how long one iteration takes, in seconds.

The paper's models depend on the token load b only (staircase in v3, piecewise linear in
v1/v2). :class:`AffineBatchTime` also separates prefill, decode and context terms, for GPUs on
which mixed batches are not free (spec section 6).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar


class BatchTimeModel(ABC):
    """Time of one iteration from its prefill tokens, decode tokens and total KV context."""

    #: True when the time depends on the token load b = prefill + decode only.
    load_only: bool = True

    @abstractmethod
    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        """Seconds one iteration with this composition takes."""

    def load_time(self, tokens: int) -> float:
        """t(b) for a load-only model."""
        return self.duration(tokens, 0, 0)

    @abstractmethod
    def describe(self) -> str:
        """One line for humans, with the formula and its constants in ms."""


def _check(name: str, value: float, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"batch_time.{name} must be finite and {need}, got {value}")


@dataclass(frozen=True)
class _PaperBatchTime(BatchTimeModel):
    """The paper's two load-only models share their constants and their checks: a fixed cost
    ``c`` (seconds, > 0 where ``c_positive``), a slope ``a`` (>= 0) and a breakpoint ``b0``
    (>= ``b0_min``)."""

    c: float
    a: float
    b0: int

    c_positive: ClassVar[bool] = False
    b0_min: ClassVar[int] = 0

    def __post_init__(self) -> None:
        _check("c", self.c, positive=self.c_positive)
        _check("a", self.a)
        if self.b0 < self.b0_min:
            raise ValueError(f"batch_time.b0 must be >= {self.b0_min}, got {self.b0}")


@dataclass(frozen=True)
class StaircaseBatchTime(_PaperBatchTime):
    """t(b) = c + a * ceil(b / b0) (paper v3). c and a in seconds."""

    b0_min = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.c + self.a <= 0:
            raise ValueError("batch_time: c + a must be > 0 so that every batch takes time")

    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        b = prefill_tokens + decode_tokens
        return self.c + self.a * (-(-b // self.b0))

    def describe(self) -> str:
        return (f"staircase t(b) = {self.c * 1e3:g} ms + {self.a * 1e3:g} ms * ceil(b / {self.b0})")


@dataclass(frozen=True)
class PiecewiseLinearBatchTime(_PaperBatchTime):
    """t(b) = c + a * max(0, b - b0) (paper v1/v2). c in seconds, a in seconds per token."""

    c_positive = True

    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        b = prefill_tokens + decode_tokens
        return self.c + self.a * max(0, b - self.b0)

    def describe(self) -> str:
        return f"piecewise linear t(b) = {self.c * 1e3:g} ms + {self.a * 1e3:g} ms/token * max(0, b - {self.b0})"


@dataclass(frozen=True)
class ConstantBatchTime(BatchTimeModel):
    """Every iteration takes ``t`` seconds, whatever it holds."""

    t: float

    def __post_init__(self) -> None:
        _check("t", self.t, positive=True)

    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        return self.t

    def describe(self) -> str:
        return f"constant t = {self.t * 1e3:g} ms"


@dataclass(frozen=True)
class AffineBatchTime(BatchTimeModel):
    """t = c + a_prefill * prefill + a_decode * decode + a_context * context (seconds).

    ``context`` is the total KV context of the batch: for every request in it, the tokens in
    its KV cache after the step (processed prompt plus generated tokens).
    """

    c: float
    a_prefill: float
    a_decode: float
    a_context: float = 0.0

    def __post_init__(self) -> None:
        _check("c", self.c, positive=True)
        for name in ("a_prefill", "a_decode", "a_context"):
            _check(name, getattr(self, name))

    @property
    def load_only(self) -> bool:  # type: ignore[override]
        return self.a_context == 0 and self.a_prefill == self.a_decode

    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        return (self.c + self.a_prefill * prefill_tokens + self.a_decode * decode_tokens
                + self.a_context * context_tokens)

    def describe(self) -> str:
        return (f"affine t = {self.c * 1e3:g} ms + {self.a_prefill * 1e3:g} ms * prefill + "
                f"{self.a_decode * 1e3:g} ms * decode + {self.a_context * 1e3:g} ms * context")


#: The paper's fit for CodeLlama-34B on one A100 80GB (spec section 1), in ms.
PAPER_C_MS, PAPER_A_MS, PAPER_B0 = 11.28, 35.47, 128


def paper_staircase() -> StaircaseBatchTime:
    """The default batch-time model: t(b) = 11.28 ms + 35.47 ms * ceil(b / 128)."""
    return StaircaseBatchTime(c=PAPER_C_MS / 1e3, a=PAPER_A_MS / 1e3, b0=PAPER_B0)


def mix_composition(tokens: int, mean_prompt: float, mean_decode: float,
                    decode_context: float | None = None) -> tuple[int, int, int]:
    """(prefill, decode, context) of a batch of ``tokens`` tokens holding the workload's token mix.

    A steady-state batch carries prefill and decode tokens in the ratio in which they arrive
    (m_p : m_d); each decode token's request holds ``decode_context`` tokens of KV context
    (default m_p + (m_d + 1) / 2, the mean over a request's decode steps), and the prefill part
    one prompt's worth (m_p). The same approximation as the theory's full batch
    (:func:`llmqueue.analysis.theory.peak_token_rate`)."""
    m = mean_prompt + mean_decode
    f = mean_prompt / m if m > 0 else 0.0
    prefill = int(round(tokens * f))
    decode = tokens - prefill
    ctx = mean_prompt + (mean_decode + 1) / 2 if decode_context is None else decode_context
    context = int(round(decode * ctx + (mean_prompt if prefill > 0 else 0.0)))
    return prefill, decode, context


@dataclass(frozen=True)
class TabulatedBatchTime(BatchTimeModel):
    """A load-only t(b) given as a table ``times[b]`` (seconds) for b = 0 .. len(times) - 1.

    Built by :func:`tabulate` from a composition-dependent model for one workload mix, so that
    the fast core (which needs t to depend on the token load only) can run it. Loads beyond
    the table are refused."""

    times: tuple[float, ...]
    source: str = "table"

    def __post_init__(self) -> None:
        if len(self.times) < 2:
            raise ValueError("a tabulated batch time needs t(b) for b = 0 and at least b = 1")
        for t in self.times[1:]:
            _check("t(b)", t, positive=True)

    def duration(self, prefill_tokens: int, decode_tokens: int, context_tokens: int = 0) -> float:
        b = prefill_tokens + decode_tokens
        if b >= len(self.times):
            raise ValueError(f"tabulated batch time: load {b} beyond the table (b <= {len(self.times) - 1})")
        return self.times[b]

    def describe(self) -> str:
        n = len(self.times) - 1
        return (f"tabulated ({self.source}) t(1) = {self.times[1] * 1e3:.4g} ms ... "
                f"t({n}) = {self.times[n] * 1e3:.4g} ms")


def tabulate(model: BatchTimeModel, max_tokens: int, mean_prompt: float, mean_decode: float,
             decode_context: float | None = None) -> TabulatedBatchTime:
    """``model`` as a load-only table for b = 0 .. max_tokens, each load split by
    :func:`mix_composition` (a load-only model gives back its own t(b))."""
    if model.load_only:
        times = tuple(model.load_time(b) for b in range(max_tokens + 1))
    else:
        times = tuple(model.duration(*mix_composition(b, mean_prompt, mean_decode, decode_context))
                      for b in range(max_tokens + 1))
    times = (times[1],) + times[1:]      # an empty batch never runs; keep t(0) positive
    return TabulatedBatchTime(times, model.describe())
