"""Scenarios: one schema for a single engine and for networks of engines, and one loader.

``load_scenario(source, overrides)`` reads a YAML file (or a built-in name) once and returns a
:class:`Scenario`; ``Scenario.kind`` is ``"engine"`` or ``"network"``, a single engine is a
network of one (``Scenario.as_network()``, ``Scenario.build_network()``) and keeps its fast path
(``Scenario.single_engine()``). Errors are ScenarioErrors that name the file and field path.
Reference: docs/scenarios.md (both forms) and docs/networks.md (networks).
"""

from ..errors import ScenarioError
from .engine import MAX_PRESSURE, EngineFields, EngineSpec, NetEngineSpec
from .fields import (
    TAGS,
    AffineSpec,
    ArrivalSpec,
    BatchTimeSpec,
    ConstantSpec,
    EmpiricalSpec,
    FixedSpec,
    GeometricSpec,
    LengthSpec,
    LogNormalSpec,
    MemorySpec,
    PiecewiseLinearSpec,
    PoissonSpec,
    ProfileSpec,
    StaircaseSpec,
    UniformSpec,
)
from .load import (
    DEFAULT_SCENARIO,
    UNSET,
    builtin_scenarios,
    check_runnable,
    format_validation,
    is_network_scenario,
    load_scenario,
    read_yaml,
    resolve_source,
    scenario_from_data,
    scenario_kind,
    set_dotted,
)
from .network import ClassSpec, NetworkSpec, RouterSpec, StepSpec, WorkflowSpec
from .schema import SINGLE_ENGINE_NAME, Scenario, SimulationSpec, SingleEngine
from .workload import InitialRequestSpec, PrefixSpec, WorkloadSpec

__all__ = [
    # the scenario and its loader
    "Scenario", "SingleEngine", "SimulationSpec", "ScenarioError", "SINGLE_ENGINE_NAME",
    "load_scenario", "scenario_from_data", "scenario_kind", "is_network_scenario", "builtin_scenarios",
    "resolve_source", "read_yaml", "set_dotted", "UNSET", "format_validation", "check_runnable",
    "DEFAULT_SCENARIO", "TAGS",
    # engines, workloads, networks
    "EngineFields", "EngineSpec", "NetEngineSpec", "MAX_PRESSURE", "WorkloadSpec", "InitialRequestSpec",
    "PrefixSpec", "NetworkSpec", "ClassSpec", "RouterSpec", "StepSpec", "WorkflowSpec",
    # shared field specs
    "BatchTimeSpec", "StaircaseSpec", "PiecewiseLinearSpec", "ConstantSpec", "AffineSpec", "ProfileSpec",
    "MemorySpec", "ArrivalSpec", "LengthSpec", "FixedSpec", "UniformSpec", "GeometricSpec",
    "LogNormalSpec", "EmpiricalSpec", "PoissonSpec",
]
