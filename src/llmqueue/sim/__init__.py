"""Discrete-event simulation: the event kernel, the simulated engine, and single-engine runs."""

from .engine import EngineStalled, IterationLog, RequestLog, SimEngine
from .fast import FastPathUnavailable, StreamedResult
from .kernel import Kernel
from .simulate import SimResult, simulate
from .stream import simulate_to_disk

__all__ = ["EngineStalled", "IterationLog", "RequestLog", "SimEngine", "Kernel", "SimResult", "simulate",
           "FastPathUnavailable", "StreamedResult", "simulate_to_disk"]
