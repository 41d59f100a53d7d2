"""Discrete-event simulation: the event kernel, the simulated engine, and single-engine runs."""

from .engine import EngineStalled, IterationLog, RequestLog, SimEngine
from .kernel import Kernel
from .simulate import SimResult, simulate

__all__ = ["EngineStalled", "IterationLog", "RequestLog", "SimEngine", "Kernel", "SimResult", "simulate"]
