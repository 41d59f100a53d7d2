"""Workloads: arrival processes, token-length distributions, trace files, and the request stream
of one run, reproducible from a seed."""

from .arrays import RequestArrays, RequestStream
from .arrivals import ArrivalProcess, DeterministicArrivals, GammaArrivals, PoissonArrivals
from .lengths import Empirical, Fixed, Geometric, LengthDistribution, LogNormal, Uniform
from .traces import TraceError, read_column, read_trace, read_trace_arrays, write_trace
from .workload import SharedPrefix, Workload, child_generators

__all__ = [
    "ArrivalProcess", "DeterministicArrivals", "GammaArrivals", "PoissonArrivals",
    "Empirical", "Fixed", "Geometric", "LengthDistribution", "LogNormal", "Uniform",
    "TraceError", "read_column", "read_trace", "read_trace_arrays", "write_trace", "SharedPrefix", "Workload",
    "child_generators", "RequestArrays", "RequestStream",
]
