"""Arrival processes: when requests reach the system.

Each process is a frozen dataclass whose :meth:`ArrivalProcess.times` yields an infinite,
nondecreasing sequence of arrival times in seconds, the first one gap after time 0. Renewal
processes draw their gaps from the given generator in chunks of :data:`CHUNK` (vectorised, and
the sequence depends on nothing but the generator's state). ``mean_rate`` (requests/s) and
``cv2`` (squared coefficient of variation of the gaps) are what the capacity theory needs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count, islice

import numpy as np

#: Gaps drawn per call to the generator.
CHUNK = 4096


def _positive(what: str, value: float, unit: str = "") -> float:
    """``value`` as a float, or a ValueError that says what to change."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number > 0{unit}, got {value!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{what} must be a finite number > 0{unit}, got {value!r}")
    return x


class ArrivalProcess(ABC):
    """An infinite stream of arrival times (seconds)."""

    @property
    @abstractmethod
    def mean_rate(self) -> float:
        """Long-run arrivals per second."""

    @property
    @abstractmethod
    def cv2(self) -> float:
        """Squared coefficient of variation of the inter-arrival gaps."""

    @abstractmethod
    def times(self, rng: np.random.Generator) -> Iterator[float]:
        """Arrival times t1 <= t2 <= ..., without end."""

    def time_chunks(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """The same times as :meth:`times`, as float64 arrays of :data:`CHUNK` (vectorised where
        a process can; this default reads :meth:`times`)."""
        it = self.times(rng)
        while True:
            yield np.fromiter(islice(it, CHUNK), dtype=np.float64, count=CHUNK)


@dataclass(frozen=True)
class _AtRate(ArrivalProcess):
    """A process whose long-run rate is its ``rate`` field (requests/s, checked finite and > 0)."""

    rate: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _positive("arrival rate", self.rate, " requests/s"))

    @property
    def mean_rate(self) -> float:
        return self.rate


class _Renewal(ArrivalProcess):
    """Arrival times are cumulative sums of i.i.d. gaps drawn CHUNK at a time."""

    @abstractmethod
    def _gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n independent gaps in seconds."""

    def time_chunks(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        t = 0.0
        while True:
            chunk = t + np.cumsum(self._gaps(rng, CHUNK))
            yield chunk
            t = float(chunk[-1])

    def times(self, rng: np.random.Generator) -> Iterator[float]:
        for chunk in self.time_chunks(rng):
            yield from chunk.tolist()


@dataclass(frozen=True)
class PoissonArrivals(_Renewal, _AtRate):
    """Poisson process: exponential gaps with mean 1/rate."""

    @property
    def cv2(self) -> float:
        return 1.0

    def _gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, n)


@dataclass(frozen=True)
class GammaArrivals(_Renewal, _AtRate):
    """Gamma gaps as in vLLM's benchmark: shape = burstiness, scale = 1/(rate * burstiness).

    The mean gap is 1/rate and the squared coefficient of variation is 1/burstiness:
    burstiness 1 is Poisson, below 1 burstier, above 1 more regular.
    """

    burstiness: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "burstiness", _positive("arrival burstiness", self.burstiness))

    @property
    def cv2(self) -> float:
        return 1.0 / self.burstiness

    def _gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.gamma(self.burstiness, 1.0 / (self.rate * self.burstiness), n)


@dataclass(frozen=True)
class DeterministicArrivals(_AtRate):
    """Arrivals at exactly k/rate, k = 1, 2, ... (computed as k/rate, so no drift builds up)."""

    @property
    def cv2(self) -> float:
        return 0.0

    def times(self, rng: np.random.Generator) -> Iterator[float]:
        return (k / self.rate for k in count(1))

    def time_chunks(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        # k / rate with k exact in float64 (k < 2**53): the same division as :meth:`times`
        for k0 in count(1, CHUNK):
            yield np.arange(k0, k0 + CHUNK, dtype=np.float64) / self.rate
