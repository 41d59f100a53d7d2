"""llmqueue: queueing theory of LLM serving, after Li, Dai, Peng (arXiv 2504.07347).

The flow is workload -> engine (policy + batch-time model) -> simulation -> analysis.

Importing the package is cheap: the names below are imported from their subpackages on first
use (module-level ``__getattr__``), so ``import llmqueue`` and ``llmqueue --help`` load none of
numpy's heavy neighbours (scipy, pandas, networkx, hypothesis).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lazy names, for type checkers and IDEs
    from .engine import (
        AffineBatchTime,
        BatchPlan,
        ConstantBatchTime,
        EngineView,
        PiecewiseLinearBatchTime,
        PlanError,
        Request,
        RequestState,
        StaircaseBatchTime,
        paper_staircase,
    )
    from .errors import LLMQueueError
    from .policies import (
        ClassPriority,
        FasterTransformer,
        Orca,
        SarathiServe,
        VanillaVLLM,
        check_work_conserving,
        make_policy,
    )
    from .sim import EngineStalled, SimResult, simulate


def _package_version() -> str:
    """The installed distribution's version, else the source tree's pyproject.toml, else ``0+unknown``."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("llmqueue")
    except PackageNotFoundError:
        pass
    from pathlib import Path
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        for line in pyproject.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "version":
                return value.strip().strip('"')
    except OSError:
        pass
    return "0+unknown"


__version__ = _package_version()

#: public name -> the subpackage that defines it
_LAZY = {
    **dict.fromkeys(("AffineBatchTime", "BatchPlan", "ConstantBatchTime", "EngineView", "PiecewiseLinearBatchTime",
                     "PlanError", "Request", "RequestState", "StaircaseBatchTime", "paper_staircase"), "engine"),
    **dict.fromkeys(("ClassPriority", "FasterTransformer", "Orca", "SarathiServe", "VanillaVLLM",
                     "check_work_conserving", "make_policy"), "policies"),
    **dict.fromkeys(("EngineStalled", "SimResult", "simulate"), "sim"),
    "LLMQueueError": "errors",
}

__all__ = [
    "AffineBatchTime", "BatchPlan", "ConstantBatchTime", "EngineView", "PiecewiseLinearBatchTime", "PlanError",
    "Request", "RequestState", "StaircaseBatchTime", "paper_staircase", "ClassPriority", "FasterTransformer",
    "Orca", "SarathiServe", "VanillaVLLM", "check_work_conserving", "make_policy", "EngineStalled",
    "SimResult", "simulate", "LLMQueueError", "__version__",
]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'llmqueue' has no attribute {name!r}") from None
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
