"""What a plan is made of: the grid of configurations, the SLOs, the prices, the search settings.

A configuration's ``params`` use the names and values of the simulate options (``policy``,
``token_budget``, ``max_batch_size``, ``gpu``, ``tp``, ``replicas``); a key missing from the
grid takes the scenario's value (``gpu``/``tp`` only exist for a GPU batch time).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass, field

#: Grid keys, in table order.
GRID_KEYS = ("policy", "token_budget", "max_batch_size", "gpu", "tp", "replicas")
_INT_KEYS = ("token_budget", "max_batch_size", "tp", "replicas")

#: Per-request metrics an SLO can bound (the summary's names: p99_ttft_ms, mean_tpot_ms, ...).
SLO_METRICS = ("ttft", "tpot", "e2el")
_SLO = re.compile(r"^(mean|p(\d+(?:\.\d+)?))_(ttft|tpot|e2el)_ms$")

#: Default on-demand prices in US$ per GPU-hour (assumptions of the planner, override with --price):
#: rounded list prices of the large clouds' single-GPU rates in 2025.
DEFAULT_PRICES = {"a100": 2.0, "h100": 3.5, "h200": 4.0, "b200": 6.0, "l40s": 1.2}

#: The GPU of a batch time that is not a GPU profile (the paper's fitted A100 profile).
DEFAULT_GPU = "a100"

ROUTERS = ("jsq", "least_tokens", "round_robin", "power_of_two")

#: Default requests per refining run on the fast core and on the engine core (PlanSpec.refine_requests_for).
REFINE_FAST, REFINE_SLOW = 400_000, 40_000


def parse_slo(text: str) -> tuple[str, float]:
    """``p99_ttft_ms=500`` -> ("p99_ttft_ms", 500.0)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _SLO.match(name):
        raise ValueError(f"--slo {text!r}: write NAME=MS with NAME like p99_ttft_ms, p90_tpot_ms, mean_e2el_ms "
                         f"(metrics: {', '.join(SLO_METRICS)})")
    m = _SLO.match(name)
    assert m is not None
    if m.group(2) is not None and not 0 < float(m.group(2)) < 100 + 1e-9:
        raise ValueError(f"--slo {text!r}: the percentile must be in (0, 100]")
    try:
        v = float(value)
    except ValueError:
        raise ValueError(f"--slo {text!r}: {value!r} is not a number of milliseconds") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"--slo {text!r}: the bound must be > 0 ms")
    return name, v


def slo_parts(name: str) -> tuple[float | None, str]:
    """("p99_ttft_ms") -> (99.0, "ttft"); ("mean_tpot_ms") -> (None, "tpot")."""
    m = _SLO.match(name)
    assert m is not None
    return (None if m.group(2) is None else float(m.group(2))), m.group(3)


def _value(key: str, text: str):
    text = text.strip()
    if key in _INT_KEYS:
        if key == "max_batch_size" and text.lower() in ("none", "null", ""):
            return None
        try:
            v = int(text)
        except ValueError:
            raise ValueError(f"--grid {key}: {text!r} is not an integer") from None
        if v < 1:
            raise ValueError(f"--grid {key}: values must be >= 1, got {v}")
        return v
    if not text:
        raise ValueError(f"--grid {key}: empty value")
    return text.lower()


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["policy=sarathi,vllm", "token_budget=256,512"]`` -> {"policy": [...], "token_budget": [...]}."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in GRID_KEYS:
            raise ValueError(f"--grid {item!r}: write KEY=V1,V2,... with KEY one of {', '.join(GRID_KEYS)}")
        if key in grid:
            raise ValueError(f"--grid {key} given twice")
        vals = [_value(key, v) for v in values.split(",")]
        grid[key] = list(dict.fromkeys(vals))
    return grid


def parse_prices(items: list[str]) -> dict[str, float]:
    """``["h100=4.0"]`` over the defaults."""
    prices = dict(DEFAULT_PRICES)
    for item in items:
        gpu, sep, value = item.partition("=")
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not sep or not gpu.strip() or not (math.isfinite(v) and v >= 0):
            raise ValueError(f"--price {item!r}: write GPU=DOLLARS_PER_GPU_HOUR, e.g. h100=4.0")
        prices[gpu.strip().lower()] = v
    return prices


@dataclass(frozen=True)
class PlanSpec:
    """Everything that decides a plan's results (hashed, so that a resumed plan refuses a changed spec)."""

    scenario: str                          # a scenario file or built-in name
    overrides: dict = field(default_factory=dict)
    slos: dict = field(default_factory=dict)          # name -> bound in ms
    attainment: float | None = None        # share of requests meeting every SLO (None: the percentiles)
    grid: dict = field(default_factory=dict)
    prices: dict = field(default_factory=lambda: dict(DEFAULT_PRICES))
    num_requests: int = 4000                # screening runs: about 3.4% sd (see band)
    seeds: tuple[int, ...] = (1,)
    resolution: float = 0.01               # relative width of the final bracket
    warmup: float = 0.1                    # share of each run's first requests left out of the SLO check
    router: str = "jsq"
    exact_batch_time: bool = False         # GPU profiles through the engine core (no tabulation)
    refine: int = 12                       # contenders re-searched with long runs per round (0: none)
    refine_requests: int | None = None     # requests per refining run (None: refine_requests_for)
    refine_resolution: float = 0.0025      # the refined bracket's relative width

    def __post_init__(self) -> None:
        if not self.slos:
            raise ValueError("a plan needs at least one --slo, e.g. --slo p99_ttft_ms=500")
        for name in self.slos:
            parse_slo(f"{name}={self.slos[name]}")
        if self.attainment is not None and not 0 < self.attainment <= 1:
            raise ValueError(f"--attainment must be in (0, 1], got {self.attainment}")
        if self.num_requests < 50:
            raise ValueError(f"--requests must be >= 50, got {self.num_requests}")
        if not self.seeds:
            raise ValueError("a plan needs at least one seed")
        if not 0 < self.resolution < 1:
            raise ValueError(f"--resolution must be in (0, 1), got {self.resolution}")
        if not 0 <= self.warmup < 0.9:
            raise ValueError(f"warmup must be a share of the requests in [0, 0.9), got {self.warmup}")
        if self.refine < 0:
            raise ValueError(f"--refine must be >= 0, got {self.refine}")
        if self.refine and self.refine_requests is not None and self.refine_requests < self.num_requests:
            raise ValueError(f"--refine-requests ({self.refine_requests}) must be at least --requests "
                             f"({self.num_requests})")
        if not 0 < self.refine_resolution < 1:
            raise ValueError(f"refine_resolution must be in (0, 1), got {self.refine_resolution}")
        if self.router not in ROUTERS:
            raise ValueError(f"--router must be one of {', '.join(ROUTERS)}, got {self.router!r}")

    @staticmethod
    def band(requests: int) -> float:
        """Relative half-width of the noise band of a goodput found with runs of ``requests``
        requests (all seeds together): 3 standard deviations, the standard deviation taken as
        2.9% x (6,000 / requests) ** 0.4, a fit to the spread of one seed's goodput measured on the
        Fig. 1 configurations of benchmarks/plan_accuracy.py (2.9% at 6,000 requests, 1.6% at
        20,000, 1.1% at 50,000, about 0.4% at 400,000: a little slower than one over the square root)."""
        return 3 * 0.029 * (6000 / requests) ** 0.4

    def screen_band(self) -> float:
        return self.band(self.num_requests * len(self.seeds))

    def refine_requests_for(self, fast: bool) -> int:
        """Requests per refining run: ``refine_requests``, else 400,000 on the fast core and
        40,000 on the engine core (replicas, KV memory, vllm-v1, exact GPU compositions: about 50
        times slower per request)."""
        if self.refine_requests is not None:
            return self.refine_requests
        return max(REFINE_FAST if fast else REFINE_SLOW, self.num_requests)

    def refining(self, fast: bool = True) -> PlanSpec:
        """The spec of the refining runs: long runs, a fine bracket."""
        return PlanSpec(**{**self.to_dict(), "seeds": self.seeds, "num_requests": self.refine_requests_for(fast),
                           "resolution": min(self.resolution, self.refine_resolution), "refine": 0})

    def configs(self) -> list[dict]:
        """Every combination of the grid, in grid order (keys in :data:`GRID_KEYS` order)."""
        keys = [k for k in GRID_KEYS if k in self.grid]
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PlanSpec:
        return cls(**{**d, "seeds": tuple(d["seeds"])})

    def digest(self) -> str:
        """Hash of what decides the rows (prices excluded: costs are recomputed from the rows)."""
        d = self.to_dict()
        d.pop("prices")
        d.pop("grid")
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def config_id(params: dict) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
