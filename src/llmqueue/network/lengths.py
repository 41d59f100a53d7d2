"""A Poisson token-count distribution, for spec section 5 (Poisson(32) and Poisson(512) tokens).

Same interface as :class:`llmqueue.workload.lengths.LengthDistribution`: ``sample(rng, n)``
returns int64 draws, ``mean`` is exact, ``min_value`` is 0 and ``max_value`` is None (unbounded).
A draw of 0 is possible (probability exp(-mean)); a visit whose prompt and decode draws are
both 0 has no work, and the network simulator passes it through at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..workload.lengths import LengthDistribution


@dataclass(frozen=True)
class Poisson(LengthDistribution):
    """Poisson(``mean``) token counts."""

    mean: float

    def __post_init__(self) -> None:
        try:
            m = float(self.mean)
        except (TypeError, ValueError):
            raise ValueError(f"Poisson.mean must be a number > 0 tokens, got {self.mean!r}") from None
        if not (math.isfinite(m) and m > 0):
            raise ValueError(f"Poisson.mean must be a finite number > 0 tokens, got {self.mean!r}")
        object.__setattr__(self, "mean", m)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.poisson(self.mean, n).astype(np.int64, copy=False)

    min_value = property(lambda self: 0)
    max_value = property(lambda self: None)
