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

With a KV memory (``engine.memory``), lambda* is the smaller of the compute bound above and the
memory bound ``M / (t_bar E[g])``, both from :func:`~llmqueue.memory.theory.combined_capacity` (the
one place bounds are combined); with prefix caching, the prompt tokens the cache serves (the hit
rate measured on the workload's requests) are taken out of m_p;
when memory binds, Theorem 2's fluid line does not apply and the fluid slope is not defined.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from ..analysis.theory import capacity_report, stability_region_scale
from ..config import Scenario, ScenarioError

if TYPE_CHECKING:
    from ..memory.theory import MemoryCapacity


@dataclass(frozen=True)
class Reference:
    lambda_star: float             # requests/s
    source: str
    capacity_tokens_per_s: float   # b_max / t(b_max)
    mean_prompt_tokens: float
    mean_decode_tokens: float
    max_batch_size: int | None
    work_conserving: bool
    lambda_compute: float | None = None   # the compute bound, when a memory bound was also computed
    lambda_memory: float | None = None    # M / (t_bar E[g]) with engine.memory, else None
    binding: str = "compute"              # "memory" when the memory bound is the smaller one

    @property
    def mean_tokens(self) -> float:
        return self.mean_prompt_tokens + self.mean_decode_tokens

    def offered_tokens(self, rate: float) -> float:
        return rate * self.mean_tokens

    def fluid_slope(self, rate: float) -> float | None:
        """lambda (m_p + m_d) - b_max / t(b_max), or None under a batch-size limit or when memory binds."""
        if self.max_batch_size is not None or self.binding == "memory":
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
    memory = sc.build_memory()
    combined = None
    if memory is not None:
        from ..memory.theory import combined_capacity
        combined = combined_capacity(policy, bt, wl, memory, seed=sc.seed)
        assert combined is not None  # the workload has tokens (checked above)
        m_p = m_p * (1 - combined.prefix_hit_rate)   # prompt tokens the prefix cache serves are no work
    rep = capacity_report(policy, bt, m_p, m_d)
    k = policy.max_batch_size
    if bt.load_only:
        # theta for one request/s is the boundary rate itself
        lam = stability_region_scale(bt, policy.token_budget, k, m_p, m_d)
        source = "k_max stability region (LP)" if k is not None else "Theorem 2"
    else:
        lam, source = rep.lambda_star, "Theorem 2 (b_max / t(b_max) for this token mix)"
    ref = Reference(lambda_star=lam, source=source, capacity_tokens_per_s=rep.capacity_tokens_per_s,
                    mean_prompt_tokens=m_p, mean_decode_tokens=m_d, max_batch_size=k,
                    work_conserving=bool(policy.work_conserving))
    return _with_memory(ref, combined.memory) if combined is not None else ref


def _with_memory(ref: Reference, mc: MemoryCapacity | None) -> Reference:
    """``ref`` with the KV-memory bound (of :func:`~llmqueue.memory.theory.combined_capacity`):
    lambda* is the smaller of the two bounds."""
    if mc is None:
        raise ScenarioError("engine.memory: the memory bound needs length distributions "
                            "(workload.prompt_tokens and decode_tokens) or a replayed trace's requests")
    if mc.lambda_memory >= ref.lambda_star:
        return replace(ref, lambda_compute=ref.lambda_star, lambda_memory=mc.lambda_memory)
    return replace(ref, lambda_star=mc.lambda_memory, lambda_compute=ref.lambda_star,
                   lambda_memory=mc.lambda_memory, binding="memory",
                   source=f"KV memory bound M / (t_bar E[g]) (compute bound: {ref.source})")
