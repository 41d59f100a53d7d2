"""The single-engine model: requests, engine state, batch plans and batch-time models."""

from ..errors import PlanError
from .batch_time import (
                         AffineBatchTime,
                         BatchTimeModel,
                         ConstantBatchTime,
                         PiecewiseLinearBatchTime,
                         StaircaseBatchTime,
                         paper_staircase,
)
from .plan import EMPTY_PLAN, BatchPlan, validate_plan
from .request import Request
from .state import EngineView, RequestState

__all__ = [
    "AffineBatchTime", "BatchTimeModel", "ConstantBatchTime", "PiecewiseLinearBatchTime",
    "StaircaseBatchTime", "paper_staircase", "EMPTY_PLAN", "BatchPlan", "PlanError",
    "validate_plan", "Request", "EngineView", "RequestState",
]
