"""Scenarios as plain data, so that a sweep point can be shipped to any worker process or node.

A point carries the scenario as the dict that pydantic dumps, the folder its relative paths are
resolved against, and dotted overrides (policy, budget, k_max, rate, horizon). Building the
scenario from that is deterministic and needs no file but those the scenario itself names.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import UNSET as DELETE  # an override value that deletes the key (the default applies)
from ..config import Scenario, ScenarioError, load_scenario, set_dotted


def scenario_payload(sc: Scenario) -> dict:
    """The scenario as JSON-able data (the inverse of :func:`build_scenario`)."""
    return sc.model_dump(mode="json")


def build_scenario(payload: dict, base: str | Path = ".", overrides: dict[str, Any] | None = None) -> Scenario:
    """A validated scenario from a payload plus dotted overrides; a bad value raises ScenarioError."""
    data = copy.deepcopy(payload)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        lines = [f"{'.'.join(str(x) for x in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
                 for err in e.errors()]
        raise ScenarioError("; ".join(lines)) from None
    sc._base = Path(base)
    return sc


def load(source: str | Path, overrides: dict[str, Any] | None = None) -> tuple[Scenario, str]:
    """Load a scenario file or built-in name; returns it and the folder relative paths resolve against."""
    sc = load_scenario(source, overrides, kind="engine")
    return sc, str(Path(sc._base).resolve())


def rate_overrides(rate: float, horizon: float) -> dict[str, Any]:
    """Overrides that make the workload a stream at ``rate`` requests/s for ``horizon`` seconds."""
    return {"workload.arrival.rate": float(rate), "workload.duration_s": float(horizon),
            "workload.num_requests": DELETE, "simulation.horizon_s": float(horizon)}
