"""Multi-turn sessions: a closed-loop source on the engine core (workload/sessions.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmqueue.config import load_scenario
from llmqueue.engine.batch_time import ConstantBatchTime
from llmqueue.errors import FastPathUnavailable, ScenarioError
from llmqueue.policies import make_policy
from llmqueue.run import simulate_scenario
from llmqueue.sim.simulate import simulate
from llmqueue.workload import Fixed, PoissonArrivals, Uniform
from llmqueue.workload.sessions import SessionWorkload, ThinkTime, prompt_hashes

B = 16


def _wl(**kw) -> SessionWorkload:
    base = dict(arrival=PoissonArrivals(2.0), turns=Uniform(1, 5), first_prompt_tokens=Uniform(20, 90),
                new_tokens=Uniform(0, 40), decode_tokens=Uniform(1, 30), think_time=ThinkTime(0.5),
                num_sessions=25, hash_block_tokens=B)
    base.update(kw)
    return SessionWorkload(**base)


def _run(wl: SessionWorkload, seed: int = 3):
    return simulate(make_policy("sarathi", 256), ConstantBatchTime(0.01), wl.source(seed))


def test_turns_grow_by_answer_plus_new_tokens_and_wait_for_completion():
    wl = _wl()
    res = _run(wl)
    req, ses = res.requests, res.sessions
    assert len(ses) == 25 and ses["completion_time"].notna().all()
    assert len(req) == ses["turns"].sum() and (ses["turns"] == ses["turns_done"]).all()
    assert ses["turns"].nunique() > 1                  # the turn count is a distribution
    for sid, g in req.sort_values(["session_id", "turn"]).groupby("session_id"):
        g = g.reset_index(drop=True)
        assert list(g["turn"]) == list(range(1, len(g) + 1))
        row = ses[ses["session_id"] == sid].iloc[0]
        assert g["arrival_time"].iloc[0] == row["arrival_time"]
        assert g["completion_time"].iloc[-1] == pytest.approx(row["completion_time"])
        for k in range(1, len(g)):
            prev, cur = g.iloc[k - 1], g.iloc[k]
            new = cur["prompt_tokens"] - prev["prompt_tokens"] - prev["decode_tokens"]
            assert 0 <= new <= 40                       # previous prompt + answer + new tokens
            assert cur["arrival_time"] >= prev["completion_time"]   # closed loop: after the answer


def test_think_time_fixed_gap_after_completion():
    res = _run(_wl(think_time=ThinkTime(2.0, "fixed"), turns=Fixed(3)))
    req = res.requests.sort_values(["session_id", "turn"])
    for _, g in req.groupby("session_id"):
        gaps = g["arrival_time"].to_numpy()[1:] - g["completion_time"].to_numpy()[:-1]
        assert np.allclose(gaps, 2.0)


def test_block_hashes_extend_the_previous_turn():
    src = _wl(turns=Fixed(4), num_sessions=6).source(11)
    firsts = [src.next_start() for _ in range(6)]
    assert src.next_start() is None
    t = 0.0
    for r in firsts:
        assert r is not None
        chain = [r]
        while True:
            t = max(t, r.arrival_time) + 1.0
            r = src.completed(r, t)
            if r is None:
                break
            chain.append(r)
        assert len(chain) == 4
        for a, b in zip(chain, chain[1:]):
            assert a.block_hashes is not None and b.block_hashes is not None
            assert b.hash_block_tokens == B and len(b.block_hashes) == math.ceil(b.prompt_tokens / B)
            full_a = a.prompt_tokens // B
            assert b.block_hashes[:full_a] == a.block_hashes[:full_a]
            if a.prompt_tokens % B:                         # the partial block grew: a new id
                assert b.block_hashes[full_a] != a.block_hashes[full_a]
    # different sessions share no block
    ids = [set(r.block_hashes or ()) for r in firsts]
    assert all(not (x & y) for i, x in enumerate(ids) for y in ids[i + 1:])
    assert src.done


def test_hashes_are_a_function_of_the_stream():
    key = b"\x01" * 8
    assert prompt_hashes(key, 40, 16)[:2] == prompt_hashes(key, 100, 16)[:2]
    assert prompt_hashes(key, 40, 16)[2] != prompt_hashes(key, 48, 16)[2]
    assert len(prompt_hashes(key, 48, 16)) == 3


def test_same_seed_same_result_other_seed_differs():
    a, b, c = _run(_wl(), 5), _run(_wl(), 5), _run(_wl(), 6)
    assert a.requests.equals(b.requests) and a.sessions.equals(b.sessions)
    assert not a.sessions.equals(c.sessions)
    assert a.summary().to_dict() == b.summary().to_dict()


def test_summary_has_session_keys():
    s = _run(_wl()).summary().to_dict()
    assert s["sessions"] == 25 and s["sessions_completed"] == 25
    assert s["p50_session_time_s"] > 0 and s["turns_completed"] == s["completed"]


def test_fast_core_refuses_sessions():
    with pytest.raises(FastPathUnavailable):
        simulate(make_policy("sarathi", 256), ConstantBatchTime(0.01), _wl().source(0), engine="fast")


SCENARIO = """
engine: {policy: sarathi, token_budget: 256, batch_time: {model: constant, t_ms: 10}}
workload:
  arrival: {process: poisson, rate: 1.0}
  prompt_tokens: {dist: uniform, low: 20, high: 60}
  decode_tokens: {dist: uniform, low: 1, high: 20}
  sessions:
    turns: {dist: uniform, low: 2, high: 4}
    new_tokens: {dist: fixed, value: 8}
    think_time: {mean_s: 1.0}
    num_sessions: 10
"""


def test_scenario_runs_sessions_and_other_commands_refuse(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO)
    sc = load_scenario(str(p))
    res = simulate_scenario(sc)
    assert len(res.sessions) == 10 and res.requests["turn"].max() >= 2
    assert simulate_scenario(sc).requests.equals(res.requests)
    with pytest.raises(ScenarioError, match="closed loop"):
        sc.build_workload()
    with pytest.raises(ScenarioError, match="sessions"):
        sc.as_network()
    bad = SCENARIO.replace("    num_sessions: 10\n", "    num_sessions: 10\n  num_requests: 5\n")
    p.write_text(bad)
    with pytest.raises(ScenarioError, match="num_requests"):
        load_scenario(str(p))


def test_simulate_command_writes_sessions_and_sweep_refuses(tmp_path):
    import json

    from typer.testing import CliRunner

    from llmqueue.cli import app
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["simulate", str(p), "--out", str(out), "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert "sessions: 10 started, 10 finished" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sessions_completed"] == 10 and summary["p50_session_time_s"] > 0
    assert len((out / "sessions.csv").read_text().splitlines()) == 11
    assert (out / "requests.csv").read_text().splitlines()[0].endswith(",session_id,turn")
    res = CliRunner().invoke(app, ["sweep", str(p), "--rates", "1", "--out", str(tmp_path / "sw")])
    assert res.exit_code == 2 and "closed loop" in res.output
