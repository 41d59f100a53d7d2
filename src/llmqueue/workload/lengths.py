"""Token-length distributions for prompts and outputs.

Each is a frozen dataclass with ``sample(rng, n)`` (an int64 array), ``mean`` (the exact mean of
what ``sample`` draws, used by the capacity theory), ``min_value`` and ``max_value`` (None when
unbounded; used to find prompts that can never fit a token budget).
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from .traces import read_column

#: Largest number of integer points LogNormal.mean sums exactly before using the tail formula.
_EXACT_TERMS = 2_000_000


def _count(what: str, value: object) -> int:
    """``value`` as a non-negative int (integral floats accepted), or a clear ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ValueError(f"{what} must be a non-negative integer number of tokens, got {value!r}")
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise ValueError(f"{what} must be a non-negative integer number of tokens, got {value!r}")
    return int(value)


class LengthDistribution(ABC):
    """A distribution of non-negative integer token counts."""

    if TYPE_CHECKING:
        # Declared for the type checker only, read-only: a subclass makes it a field (Geometric)
        # or a property; a class attribute here would become the dataclass fields' default.
        @property
        def mean(self) -> float:
            """Exact mean of the sampled values."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n independent draws, dtype int64."""

    @property
    @abstractmethod
    def min_value(self) -> int:
        """Smallest possible value."""

    @property
    @abstractmethod
    def max_value(self) -> int | None:
        """Largest possible value, or None if unbounded."""


@dataclass(frozen=True)
class Fixed(LengthDistribution):
    """Always ``value`` tokens."""

    value: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _count("Fixed.value", self.value))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.int64)

    mean = property(lambda self: float(self.value))
    min_value = property(lambda self: self.value)
    max_value = property(lambda self: self.value)


@dataclass(frozen=True)
class Uniform(LengthDistribution):
    """Integers low..high inclusive, equally likely."""

    low: int
    high: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _count("Uniform.low", self.low))
        object.__setattr__(self, "high", _count("Uniform.high", self.high))
        if self.high < self.low:
            raise ValueError(f"Uniform needs low <= high, got low={self.low}, high={self.high}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.low, self.high, size=n, dtype=np.int64, endpoint=True)

    mean = property(lambda self: (self.low + self.high) / 2)
    min_value = property(lambda self: self.low)
    max_value = property(lambda self: self.high)


@dataclass(frozen=True)
class Geometric(LengthDistribution):
    """Geometric on {1, 2, ...} with success probability 1/mean (so the mean is ``mean``)."""

    mean: float

    def __post_init__(self) -> None:
        m = float(self.mean)
        if not (math.isfinite(m) and m >= 1):
            raise ValueError(f"Geometric.mean must be a finite number >= 1 token, got {self.mean!r}")
        object.__setattr__(self, "mean", m)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.geometric(1.0 / self.mean, n).astype(np.int64, copy=False)

    min_value = property(lambda self: 1)
    max_value = property(lambda self: None)


@dataclass(frozen=True, init=False)
class LogNormal(LengthDistribution):
    """round(X) clipped to [min, max], X lognormal with E[X] = ``mean`` and log-sd ``sigma``.

    The constructor's ``mean`` is the mean of the underlying lognormal *before* rounding and
    clipping (stored as ``underlying_mean``; log-mean mu = ln(mean) - sigma^2 / 2). Rounding is to
    the nearest integer (ties to even). The :attr:`mean` property is the mean of what is sampled,
    which differs noticeably for small means or tight clipping. It is computed from the normal
    CDF as E[clip(round(X), min, max)] = min + sum_{k=min}^{max-1} P(X >= k + 1/2): an exact sum
    when at most 2 million integers are in range, otherwise an exact sum up to a point K beyond
    which the lognormal has practically no mass (or 2 million terms), plus the rest of the sum
    approximated (midpoint rule) by the closed form E[(X - K)^+] - E[(X - max)^+], whose error is
    far below 1e-6 tokens.
    """

    underlying_mean: float
    sigma: float
    min: int
    max: int | None

    def __init__(self, mean: float, sigma: float, min: int = 1, max: int | None = None) -> None:
        m, s = float(mean), float(sigma)
        if not (math.isfinite(m) and m > 0):
            raise ValueError(f"LogNormal.mean must be a finite number > 0 tokens, got {mean!r}")
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f"LogNormal.sigma must be a finite number >= 0, got {sigma!r}")
        lo = _count("LogNormal.min", min)
        hi = None if max is None else _count("LogNormal.max", max)
        if hi is not None and hi < lo:
            raise ValueError(f"LogNormal needs min <= max, got min={lo}, max={hi}")
        for name, value in (("underlying_mean", m), ("sigma", s), ("min", lo), ("max", hi)):
            object.__setattr__(self, name, value)

    @property
    def mu(self) -> float:
        """Mean of log X."""
        return math.log(self.underlying_mean) - self.sigma**2 / 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = np.rint(rng.lognormal(self.mu, self.sigma, n))
        return np.clip(x, self.min, self.max if self.max is not None else 2.0**62).astype(np.int64)

    @cached_property
    def mean(self) -> float:
        from scipy.special import ndtr  # the only use of scipy here: keep `import` light

        lo, hi, mu, s = self.min, self.max, self.mu, self.sigma
        if s == 0:
            return float(np.clip(np.rint(self.underlying_mean), lo, hi if hi is not None else np.inf))
        q = math.ceil(math.exp(mu + 8.5 * s))  # P(X > q) ~ 1e-17
        end = max(lo, min(q if hi is None else hi, lo + _EXACT_TERMS))
        k = np.arange(lo, end, dtype=np.float64)
        total = lo + float(np.sum(ndtr((mu - np.log(k + 0.5)) / s)))
        if hi is None or end < hi:
            total += self._excess(end) - (self._excess(hi) if hi is not None else 0.0)
        return total

    def _excess(self, k: float) -> float:
        """E[(X - k)^+] for the underlying lognormal X, k >= 0."""
        if k <= 0:
            return self.underlying_mean - k
        from scipy.special import ndtr

        mu, s, lk = self.mu, self.sigma, math.log(k)
        return self.underlying_mean * float(ndtr((mu + s * s - lk) / s)) - k * float(ndtr((mu - lk) / s))

    min_value = property(lambda self: self.min)
    max_value = property(lambda self: self.max)


@dataclass(frozen=True, repr=False)
class Empirical(LengthDistribution):
    """Draws from ``values`` (with probabilities proportional to ``weights``, equal if None)."""

    values: tuple[int, ...]
    weights: tuple[float, ...] | None = None
    _values: np.ndarray = field(init=False, compare=False, repr=False)
    _probs: np.ndarray | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        values = tuple(_count("Empirical value", v) for v in self.values)
        if not values:
            raise ValueError("Empirical needs at least one value")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_values", np.array(values, dtype=np.int64))
        probs = None
        if self.weights is not None:
            w = np.array(self.weights, dtype=np.float64)
            if w.shape != (len(values),):
                raise ValueError(f"Empirical needs one weight per value: {len(values)} values, {w.size} weights")
            if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
                raise ValueError("Empirical weights must be finite, >= 0 and not all 0")
            object.__setattr__(self, "weights", tuple(w.tolist()))
            probs = w / w.sum()
        object.__setattr__(self, "_probs", probs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], column: str | None = None) -> Empirical:
        """Values from a one-number-per-line file, or from a CSV column (e.g. ``prompt_tokens`` of
        our trace format or ``ContextTokens`` of the Azure trace). Raises TraceError if malformed."""
        return cls(tuple(read_column(path, column)))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self._probs is None:
            return self._values[rng.integers(0, len(self._values), size=n)]
        return rng.choice(self._values, size=n, p=self._probs)

    @property
    def mean(self) -> float:
        if self._probs is None:
            return float(np.mean(self._values))
        return float(np.dot(self._values, self._probs))

    min_value = property(lambda self: int(self._values.min()))
    max_value = property(lambda self: int(self._values.max()))

    def __repr__(self) -> str:
        kind = "weighted" if self.weights is not None else "equally likely"
        return f"Empirical({len(self.values)} {kind} values, mean {self.mean:g})"

