"""The real engine computes what the model computes: a request's logits in a mixed batch (prefill
chunks and decodes of other requests, any policy, any block size) equal those of the request run
alone without a cache, and match Hugging Face's LlamaForCausalLM with the same weights."""

import pytest

torch = pytest.importorskip("torch")

from llmqueue.engine import BatchPlan, EngineCore, Request  # noqa: E402
from llmqueue.policies import make_policy  # noqa: E402
from llmqueue.real.config import ModelConfig, preset  # noqa: E402
from llmqueue.real.model import build_model  # noqa: E402
from llmqueue.real.runner import ModelRunner  # noqa: E402

ATOL = 2e-4

REQUESTS = [Request(0, 0.0, 23, 5), Request(1, 0.0, 0, 4), Request(2, 0.0, 9, 7),
            Request(3, 0.0, 40, 3), Request(4, 0.0, 1, 6), Request(5, 0.0, 17, 1)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(preset("tiny"), seed=3)


def drive(model, policy, requests, block_size=4, num_blocks=2):
    """Run requests to completion with the policy's plans (no clock); return the runner and plans."""
    runner = ModelRunner(model, block_size=block_size, num_blocks=num_blocks, record_logits=True)
    core = EngineCore(policy)
    for r in requests:
        runner.add(r)
        core.add(r, 0.0)
    plans, t, fed = [], 0.0, {}
    while core.states:
        step = core.schedule(t)
        plan = step.plan
        runner.execute(plan)
        plans.append(plan)
        core.begin(step, t, t + 1)
        for req in core.complete(step, t + 1):
            fed[req.request_id] = (list(runner.sequence(req.request_id)), list(runner.generated(req.request_id)),
                                   torch.stack(runner.logits[req.request_id]))
            runner.release(req.request_id)
        t += 1
    return fed, plans


@pytest.mark.parametrize("policy", ["sarathi", "orca", "vllm", "fastertransformer"])
def test_batched_logits_equal_each_request_alone(model, policy):
    fed, plans = drive(model, make_policy(policy, 48), REQUESTS)
    # the batches really were mixed for the chunking policies
    if policy in ("sarathi", "orca"):
        assert any(p.prefill and p.decode for p in plans)
        assert any(n < r.prompt_tokens for p in plans for rid, n in p.prefill for r in REQUESTS if r.request_id == rid)
    for r in REQUESTS:
        seq, gen, logits = fed[r.request_id]
        assert len(seq) == r.prompt_tokens + r.decode_tokens == logits.shape[0]
        ref = model.dense_logits(torch.tensor(seq))
        assert torch.allclose(logits, ref, atol=ATOL), (policy, r, (logits - ref).abs().max())
        # greedy decoding: each decode input is the argmax of the previous position
        if r.prompt_tokens:
            assert seq[r.prompt_tokens:] == ref.argmax(-1)[r.prompt_tokens - 1:-1].tolist()
        assert gen[-1] == int(ref[-1].argmax())


def test_generation_is_the_same_alone_and_in_any_batch(model):
    alone = {r.request_id: drive(model, make_policy("sarathi", 64), [r])[0][r.request_id][1] for r in REQUESTS}
    for policy, budget, bs in [("sarathi", 7, 1), ("orca", 16, 16), ("vllm", 40, 3)]:
        fed, _ = drive(model, make_policy(policy, budget), REQUESTS, block_size=bs)
        assert {rid: v[1] for rid, v in fed.items()} == alone


def test_plan_errors_are_refused_before_touching_state(model):
    runner = ModelRunner(model)
    runner.add(Request(0, 0.0, 5, 2))
    with pytest.raises(ValueError, match="before its prompt is done"):
        runner.execute(BatchPlan(decode=(0,)))
    with pytest.raises(ValueError, match="past the end"):
        runner.execute(BatchPlan(prefill=((0, 6),)))
    assert runner.sequence(0) == [] and runner.cache.length(0) == 0


def test_bad_config_is_one_clear_error():
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        ModelConfig(vocab_size=10, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                    num_key_value_heads=3, intermediate_size=8)
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("huge")


def test_same_seed_same_weights_different_seed_different():
    a, b, c = (build_model(preset("tiny"), seed=s) for s in (1, 1, 2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)


def test_bfloat16_path_the_gpu_default_runs_on_the_cpu():
    """The CUDA default is bfloat16; the same code in bfloat16 on the CPU equals its own dense
    reference and float32 within bfloat16 precision."""
    m16 = build_model(preset("tiny"), seed=3, dtype=torch.bfloat16)
    m32 = build_model(preset("tiny"), seed=3)
    fed, _ = drive(m16, make_policy("sarathi", 32), REQUESTS[:4])
    assert fed[0][2].dtype == torch.float32                      # logits come back in float32
    for r in REQUESTS[:4]:
        seq, _, logits = fed[r.request_id]
        ids = torch.tensor(seq)
        assert torch.allclose(logits, m16.dense_logits(ids), atol=0.05)
        assert (logits - m32.dense_logits(ids)).abs().max() < 0.2
