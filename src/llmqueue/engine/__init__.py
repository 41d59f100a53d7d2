"""The single-engine model: requests, engine state, batch plans, batch-time models and the
clock-free engine core that every driver (simulated or real) runs."""

from ..errors import PlanError
from .batch_time import (
                         AffineBatchTime,
                         BatchTimeModel,
                         ConstantBatchTime,
                         PiecewiseLinearBatchTime,
                         StaircaseBatchTime,
                         paper_staircase,
)
from .core import EngineCore, Step
from .logs import IterationLog, RequestLog, stalled
from .plan import EMPTY_PLAN, BatchPlan, validate_plan
from .request import Request
from .state import EngineView, RequestState
from .view import MemoryView

__all__ = [
    "AffineBatchTime", "BatchTimeModel", "ConstantBatchTime", "PiecewiseLinearBatchTime",
    "StaircaseBatchTime", "paper_staircase", "EMPTY_PLAN", "BatchPlan", "PlanError",
    "validate_plan", "Request", "EngineView", "RequestState", "MemoryView", "EngineCore", "Step",
    "IterationLog", "RequestLog", "stalled",
]
