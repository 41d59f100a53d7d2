"""The capacity theory of the paper (Theorem 2 and the k_max region): theory only.

The metrics of runs live with the runs, in :mod:`llmqueue.sim.metrics`; the batch notation of
Fig. 8 in :mod:`llmqueue.sim.batches`.
"""

from .theory import (
                     CapacityReport,
                     best_token_rate,
                     capacity_report,
                     peak_token_rate,
                     stability_region_scale,
                     workload_capacity,
)

__all__ = ["CapacityReport", "capacity_report", "peak_token_rate", "best_token_rate", "stability_region_scale",
           "workload_capacity"]
