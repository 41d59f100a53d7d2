"""Plans that break a batch constraint raise at once, naming the constraint."""

import pytest

from llmqueue import BatchPlan, ConstantBatchTime, EngineView, PlanError, Request, RequestState, simulate
from llmqueue.engine import validate_plan
from llmqueue.policies import Policy


def view():
    reqs = [Request(0, 0, 5, 3), Request(1, 0, 0, 2), Request(2, 0, 4, 0)]
    return EngineView(0.0, tuple(RequestState(r, i) for i, r in enumerate(reqs)))


@pytest.mark.parametrize("plan,needle", [
    (BatchPlan(decode=(0,)), "(6a)"),
    (BatchPlan(prefill=((0, 5),), decode=(0,)), "(6a)"),
    (BatchPlan(prefill=((0, 6),)), "(6b)"),
    (BatchPlan(prefill=((0, 2), (0, 2))), "(6b)"),
    (BatchPlan(decode=(1, 1)), "(6c)"),
    (BatchPlan(prefill=((0, 5), (2, 4)), decode=(1,)), "(6d)"),
    (BatchPlan(prefill=((0, 1),), decode=(1,)), "k_max"),
    (BatchPlan(decode=(7,)), "not in the engine"),
    (BatchPlan(prefill=((0, 0),)), "positive"),
])
def test_invalid_plans_name_the_constraint(plan, needle):
    with pytest.raises(PlanError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        validate_plan(plan, view(), token_budget=8, max_batch_size=1)


def test_valid_plan_passes():
    validate_plan(BatchPlan(prefill=((0, 3), (2, 4)), decode=(1,)), view(), token_budget=8)


class Greedy(Policy):
    """A broken user policy: decodes everything and ignores the budget."""
    name = "greedy"

    def __call__(self, v):
        return BatchPlan(prefill=tuple((s.request_id, s.prefill_left) for s in v.requests if s.prefill_left),
                         decode=tuple(s.request_id for s in v.requests if s.decode_eligible))


def test_simulator_rejects_bad_user_policy():
    reqs = [Request(i, 0.0, 10, 2) for i in range(3)]
    with pytest.raises(PlanError, match=r"\(6d\)"):
        simulate(Greedy(token_budget=16), ConstantBatchTime(1.0), reqs)
