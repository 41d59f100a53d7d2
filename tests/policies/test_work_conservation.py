"""The work-conservation checker: Orca and Sarathi pass, FasterTransformer and vLLM fail small."""

import pytest

from llmqueue import BatchPlan, check_work_conserving, make_policy
from llmqueue.policies import Policy
from llmqueue.policies.work_conservation import is_work_conserving_plan


@pytest.mark.parametrize("name", ["orca", "sarathi"])
@pytest.mark.parametrize("budget", [1, 4, 16, 128])
def test_chunking_policies_are_work_conserving(name, budget):
    assert check_work_conserving(make_policy(name, budget), max_examples=600) is None


@pytest.mark.parametrize("name", ["fastertransformer", "vllm"])
def test_whole_policies_fail_with_small_counterexample(name):
    pol = make_policy(name, 16)
    cex = check_work_conserving(pol, max_examples=600)
    assert cex is not None
    assert len(cex.view.requests) <= 2
    assert not is_work_conserving_plan(pol(cex.view), cex.view, 16)
    assert "could be scheduled" in cex.reason


def test_mixing_counterexample_exists_when_prompts_fit():
    # Even with every prompt smaller than the budget the whole-prefill policies do not mix.
    pol = make_policy("fastertransformer", 64)
    cex = check_work_conserving(pol, max_examples=600, max_tokens=8)
    assert cex is not None and any(s.decode_eligible for s in cex.view.requests)


class DecodeOnlyFirst(Policy):
    """A user policy that leaves one token of budget unused whenever it can."""
    name = "lazy"

    def __call__(self, v):
        budget = self.token_budget - 1
        dec = [s.request_id for s in v.requests if s.decode_eligible][:budget]
        return BatchPlan(decode=tuple(dec))


def test_user_policy_counterexample():
    cex = check_work_conserving(DecodeOnlyFirst(token_budget=4), max_examples=300)
    assert cex is not None
