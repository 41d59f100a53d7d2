"""Metrics of runs and the capacity theory of the paper (Theorem 2 and the k_max region)."""

from .metrics import latency_stats, request_latencies, summarize
from .theory import CapacityReport, capacity_report, peak_token_rate, best_token_rate, stability_region_scale

__all__ = ["latency_stats", "request_latencies", "summarize", "CapacityReport", "capacity_report",
           "peak_token_rate", "best_token_rate", "stability_region_scale"]
