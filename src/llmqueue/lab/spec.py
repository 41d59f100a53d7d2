"""What a sweep is: a scenario and the axes to vary, checked once, saved with the results.

Axes: arrival rates (absolute in requests/s, or multiples of lambda*), policies, token budgets,
k_max values and seeds. The spec expands into points in a fixed order (budget, k_max, policy,
rate, seed), the order of the tables. It is saved as ``sweep.json`` in the output folder; a sweep
resumed in that folder must have the same spec.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import ScenarioError
from ..policies.registry import policy_info
from ..sim.manifest import write_text
from .bisect import BisectSpec
from .config import DELETE, build_scenario, load, scenario_payload
from .reference import Reference, reference

#: Default horizon, in full-batch times t(b_max): about 20 minutes for the paper's staircase.
DEFAULT_HORIZON_BATCHES = 8000
DEFAULT_RATES = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)


@dataclass(frozen=True)
class SweepSpec:
    scenario: str
    payload: dict
    base: str
    rates: tuple[float, ...]
    relative: bool
    policies: tuple[str, ...]
    token_budgets: tuple[int, ...]
    max_batch_sizes: tuple[int | None, ...]
    seeds: tuple[int, ...]
    horizon_s: float
    max_horizon_s: float
    warmup: str | float = "auto"
    tolerance: float = 0.01
    confidence: float = 0.95
    batches: int = 10
    bisect: BisectSpec | None = None

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["bisect"] = asdict(self.bisect) if self.bisect is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        d = dict(d)
        for k in ("rates", "policies", "token_budgets", "max_batch_sizes", "seeds"):
            d[k] = tuple(d[k])
        d["bisect"] = BisectSpec(**d["bisect"]) if d.get("bisect") else None
        return cls(**d)

    def fingerprint(self) -> str:
        """Hash of everything that determines the results (not the scenario's file name)."""
        d = self.to_dict()
        d.pop("scenario")
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    # -- expansion ------------------------------------------------------------------------------
    def engine_configs(self) -> list[tuple[int, int | None]]:
        return [(b, k) for b in self.token_budgets for k in self.max_batch_sizes]

    def reference_for(self, budget: int, kmax: int | None) -> Reference:
        ov = {"engine.token_budget": budget, "engine.max_batch_size": DELETE if kmax is None else kmax}
        return reference(build_scenario(self.payload, self.base, ov))

    def params(self, stage: str, policy: str, budget: int, kmax: int | None, rate: float, rate_rel: float,
               seed: int, horizon: float, max_horizon: float) -> dict:
        return {"stage": stage, "policy": policy, "token_budget": budget, "max_batch_size": kmax,
                "rate": float(rate), "rate_rel": float(rate_rel), "seed": int(seed), "horizon_s": float(horizon),
                "max_horizon_s": float(max_horizon), "warmup": self.warmup, "tolerance": self.tolerance,
                "confidence": self.confidence, "batches": self.batches}

    def grid_points(self, refs: dict[tuple[int, int | None], Reference]) -> list[dict]:
        pts = []
        for b, k in self.engine_configs():
            lam = refs[(b, k)].lambda_star
            for pol in self.policies:
                for r in self.rates:
                    rate, rel = (r * lam, r) if self.relative else (r, r / lam)
                    for s in self.seeds:
                        pts.append(self.params("grid", pol, b, k, rate, rel, s, self.horizon_s, self.max_horizon_s))
        return pts

    def bisect_seeds(self) -> list[int]:
        n = self.bisect.replications if self.bisect else 0
        seeds = list(self.seeds)
        while len(seeds) < n:
            seeds.append(max(seeds) + 1)
        return seeds[:n]


def _positive(name: str, x: float) -> float:
    if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return float(x)


def make_spec(scenario: str, *, rates: list[float] | None = None, relative: bool = True,
              policies: list[str] | None = None, token_budgets: list[int] | None = None,
              max_batch_sizes: list[int | None] | None = None, seeds: list[int] | None = None,
              horizon_s: float | None = None, max_horizon_s: float | None = None,
              warmup: str | float = "auto", tolerance: float = 0.01, confidence: float = 0.95,
              batches: int = 10, bisect: BisectSpec | None = None) -> SweepSpec:
    """Load the scenario, fill in defaults and check every axis; bad input raises one ValueError."""
    sc, base = load(scenario)
    eng, wspec = sc.single_specs()
    if wspec.arrival is None:
        raise ScenarioError(f"{scenario}: sweeping arrival rates needs a generated workload "
                            "(workload.arrival), not a trace or initial requests only")
    payload = scenario_payload(sc)
    rates = list(DEFAULT_RATES if rates is None else rates)
    if not rates:
        raise ValueError("give at least one rate")
    rates = [_positive("every rate", r) for r in rates]
    policies = [p.lower() for p in (policies or [eng.policy])]
    for p in policies:
        policy_info(p)   # an unknown name raises PolicyError listing the registry's names
    budgets = list(token_budgets or [eng.token_budget])
    for b in budgets:
        if not isinstance(b, int) or b < 1:
            raise ValueError(f"token budgets must be integers >= 1, got {b!r}")
    kmaxes = list(max_batch_sizes) if max_batch_sizes is not None else [eng.max_batch_size]
    for k in kmaxes:
        if k is not None and (not isinstance(k, int) or k < 1):
            raise ValueError(f"k_max values must be integers >= 1 or none, got {k!r}")
    seeds = list(seeds if seeds is not None else [sc.seed])
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    if horizon_s is None:
        horizon_s = sc.simulation.horizon_s
    if horizon_s is None:
        t_full = sc.build_batch_time().load_time(eng.token_budget)
        horizon_s = float(round(DEFAULT_HORIZON_BATCHES * t_full))
    horizon_s = _positive("the horizon", horizon_s)
    max_horizon_s = 4 * horizon_s if max_horizon_s is None else _positive("the maximum horizon", max_horizon_s)
    if max_horizon_s < horizon_s:
        raise ValueError(f"the maximum horizon ({max_horizon_s:g} s) is shorter than the horizon ({horizon_s:g} s)")
    if warmup != "auto":
        try:
            warmup = float(warmup)
        except (TypeError, ValueError):
            raise ValueError(f"warm-up must be 'auto' or a number of seconds, got {warmup!r}") from None
        if not 0 <= warmup < horizon_s:
            raise ValueError(f"a fixed warm-up must be in [0, horizon) = [0, {horizon_s:g}) s, got {warmup:g}")
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be a fraction in (0, 1), got {tolerance}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not isinstance(batches, int) or batches < 2:
        raise ValueError(f"batches must be an integer >= 2, got {batches!r}")
    spec = SweepSpec(scenario=str(scenario), payload=payload, base=base, rates=tuple(rates),
                     relative=relative, policies=tuple(policies), token_budgets=tuple(budgets),
                     max_batch_sizes=tuple(kmaxes), seeds=tuple(seeds), horizon_s=horizon_s,
                     max_horizon_s=max_horizon_s, warmup=warmup, tolerance=tolerance,
                     confidence=confidence, batches=batches, bisect=bisect)
    for b, k in spec.engine_configs():   # every engine configuration must build
        spec.reference_for(b, k)
    return spec


def save_spec(spec: SweepSpec, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "sweep.json", json.dumps({"fingerprint": spec.fingerprint(), **spec.to_dict()}, indent=2) + "\n")


def saved_spec(out: Path) -> SweepSpec | None:
    p = Path(out) / "sweep.json"
    if not p.exists():
        return None
    d = json.loads(p.read_text())
    d.pop("fingerprint", None)
    return SweepSpec.from_dict(d)
