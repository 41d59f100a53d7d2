"""The theory a measurement is compared with: lambda* and the fluid slope of a configuration.

lambda* is the best any scheduler could do, in requests/s, for the workload's token mix:

* without a batch-size limit, ``max_b (b / t(b)) / (m_p + m_d)`` (Theorem 2; it is
  ``b_max / t(b_max) / (m_p + m_d)`` whenever the full batch is the most efficient one);
* with k_max, the boundary of the stability region along the workload's direction, from the
  project's linear program over feasible batch compositions (``stability_region_scale``);
* for batch-time models that are not load-only, Theorem 2's ``b_max / t(b_max)`` with the
  workload's token mix (the project's ``capacity_report``).

The fluid slope is Theorem 2's ``lambda (m_p + m_d) - b_max / t(b_max)``: the growth rate of the
backlog of a work-conserving policy above the boundary. It is not defined with k_max.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..analysis.theory import capacity_report, stability_region_scale
from ..config import Scenario, ScenarioError


@dataclass(frozen=True)
class Reference:
    lambda_star: float             # requests/s
    source: str
    capacity_tokens_per_s: float   # b_max / t(b_max)
    mean_prompt_tokens: float
    mean_decode_tokens: float
    max_batch_size: int | None
    work_conserving: bool

    @property
    def mean_tokens(self) -> float:
        return self.mean_prompt_tokens + self.mean_decode_tokens

    def offered_tokens(self, rate: float) -> float:
        return rate * self.mean_tokens

    def fluid_slope(self, rate: float) -> float | None:
        """lambda (m_p + m_d) - b_max / t(b_max), or None under a batch-size limit."""
        if self.max_batch_size is not None:
            return None
        return rate * self.mean_tokens - self.capacity_tokens_per_s

    def to_dict(self) -> dict:
        return asdict(self)


def reference(sc: Scenario) -> Reference:
    """lambda* and the capacity of a scenario's engine for its workload's token mix."""
    wl = sc.build_workload()
    m_p, m_d = wl.mean_prompt_tokens, wl.mean_decode_tokens
    if m_p + m_d <= 0:
        raise ScenarioError("the scenario has no arriving requests: lambda* needs an arrival process")
    policy, bt = sc.build_policy(), sc.build_batch_time()
    rep = capacity_report(policy, bt, m_p, m_d)
    k = policy.max_batch_size
    if bt.load_only:
        # theta for one request/s is the boundary rate itself
        lam = stability_region_scale(bt, policy.token_budget, k, m_p, m_d)
        source = "k_max stability region (LP)" if k is not None else "Theorem 2"
    else:
        lam, source = rep.lambda_star, "Theorem 2 (b_max / t(b_max) for this token mix)"
    return Reference(lambda_star=lam, source=source, capacity_tokens_per_s=rep.capacity_tokens_per_s,
                     mean_prompt_tokens=m_p, mean_decode_tokens=m_d, max_batch_size=k,
                     work_conserving=bool(policy.work_conserving))
