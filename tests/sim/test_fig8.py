"""The paper's Fig. 8 worked example: each policy's batch sequence, exactly as the spec lists it."""

import pytest

from llmqueue import ConstantBatchTime, Request, make_policy, simulate
from llmqueue.sim.batches import format_plan

FIG8 = {
    ("vllm", 4): "[Ad Bd Cd] [Dp Ep] [Ad Bd Cd Dd] [Bd Cd Ed] [Bd]",
    ("orca", 5): "[Ad Bd Cd] [Ad Bd Cd Dp Ep] [Bd Cd Dd Ed] [Bd]",
    ("fastertransformer", 4): "[Ad Bd Cd] [Ad Bd Cd] [Bd Cd] [Bd] [Dp Ep] [Dd Ed]",
    ("sarathi", 4): "[Ad Bd Cd] [Ad Bd Cd Dp] [Bd Cd Dd Ep] [Bd Ed]",
}


def fig8_requests():
    return [Request(0, 0.0, 0, 2, label="A"), Request(1, 0.0, 0, 4, label="B"),
            Request(2, 0.0, 0, 3, label="C"), Request(3, 0.5, 1, 1, label="D"),
            Request(4, 0.5, 1, 1, label="E")]


@pytest.mark.parametrize("policy,budget", list(FIG8))
def test_fig8_batches(policy, budget):
    res = simulate(make_policy(policy, budget), ConstantBatchTime(1.0), fig8_requests(),
                   record_composition=True)
    got = " ".join(format_plan(p, res.labels) for p in res.compositions)
    assert got == FIG8[(policy, budget)]
    # one time unit per batch, back to back from t = 0
    assert list(res.iterations["start_time"]) == list(range(len(res.compositions)))
    assert res.tokens_arrived == res.tokens_processed == 13 and res.tokens_left == 0


def test_fig8_request_times_sarathi():
    res = simulate(make_policy("sarathi", 4), ConstantBatchTime(1.0), fig8_requests())
    r = res.requests.set_index("request_id")
    # D: prefill in batch 2 (ends t=2), decode in batch 3 (ends t=3)
    assert r.loc[3, "prefill_end_time"] == 2.0
    assert r.loc[3, "first_token_time"] == 3.0 and r.loc[3, "completion_time"] == 3.0
    # A, B, C were already decoding: prefill end is their arrival
    assert list(r.loc[[0, 1, 2], "prefill_end_time"]) == [0.0, 0.0, 0.0]
    assert list(r["completion_time"]) == [2.0, 4.0, 3.0, 3.0, 4.0]


def test_fig8_from_cli(tmp_path):
    from typer.testing import CliRunner

    from llmqueue.cli import app
    out = CliRunner().invoke(app, ["simulate", "fig8", "--policy", "orca", "--token-budget", "5",
                                   "--show-batches", "10", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "[Ad Bd Cd Dp Ep]" in out.output
    assert (tmp_path / "batches.parquet").exists()
