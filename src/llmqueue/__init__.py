"""llmqueue: queueing theory of LLM serving, after Li, Dai, Peng (arXiv 2504.07347).

The flow is workload -> engine (policy + batch-time model) -> simulation -> analysis.
"""

from .engine import (AffineBatchTime, BatchPlan, ConstantBatchTime, EngineView, PiecewiseLinearBatchTime,
                     PlanError, Request, RequestState, StaircaseBatchTime, paper_staircase)
from .policies import (ClassPriority, FasterTransformer, Orca, SarathiServe, VanillaVLLM, check_work_conserving,
                       make_policy)
from .sim import EngineStalled, SimResult, simulate

__version__ = "0.1.0"

__all__ = [
    "AffineBatchTime", "BatchPlan", "ConstantBatchTime", "EngineView", "PiecewiseLinearBatchTime", "PlanError",
    "Request", "RequestState", "StaircaseBatchTime", "paper_staircase", "ClassPriority", "FasterTransformer",
    "Orca", "SarathiServe", "VanillaVLLM", "check_work_conserving", "make_policy", "EngineStalled",
    "SimResult", "simulate",
]
