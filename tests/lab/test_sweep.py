"""Sweeps: tables, resume after a kill, identical results on every backend, bad input (llmqueue.lab)."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.lab.backends import BackendError, make_backend
from llmqueue.lab.journal import Journal
from llmqueue.lab.spec import make_spec
from llmqueue.lab.sweep import SweepMismatch, run_sweep

AXES = dict(rates=[0.6, 1.2], policies=["sarathi", "vllm"], seeds=[1, 2], horizon_s=120.0)
CLI_AXES = ["--rates", "0.6,1.2", "--policies", "sarathi,vllm", "--seeds", "1-2", "--horizon", "120"]


def spec():
    return make_spec("theorem2", **AXES)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    return out, run_sweep(spec(), out, make_backend("serial"))


def test_tables_and_verdicts(serial_run):
    out, o = serial_run
    for f in ("points.csv", "points.parquet", "summary.csv", "summary.parquet", "sweep.json", "points.jsonl"):
        assert (out / f).exists(), f
    p = o.points
    assert len(p) == 8 and p["point_id"].is_unique
    assert list(p["policy"]) == ["sarathi"] * 4 + ["vllm"] * 4         # the spec's order
    for col in ("slope", "slope_lo", "slope_hi", "verdict", "warmup_s", "warmup_method", "throughput_tokens_per_s",
                "p50_ttft_ms", "p99_itl_ms", "lambda_star", "fluid_line", "fluid_in_ci", "horizon_used_s"):
        assert col in p, col
    assert (p[p["rate_rel"] == 1.2]["verdict"] == "unstable").all()
    s = o.summary
    assert len(s) == 4 and (s["seeds"] == 2).all()
    assert s.set_index(["policy", "rate_rel"]).loc[("sarathi", 1.2), "fluid_in_ci"]
    assert pd.read_parquet(out / "points.parquet").equals(pd.read_csv(out / "points.csv").astype(
        pd.read_parquet(out / "points.parquet").dtypes.to_dict()))


def test_local_workers_match_serial(serial_run, tmp_path):
    out, _ = serial_run
    o = run_sweep(spec(), tmp_path, make_backend("local", 2))
    assert o.computed == 8
    for f in ("points.csv", "summary.csv"):
        assert (tmp_path / f).read_bytes() == (out / f).read_bytes()


def test_rerun_resumes_everything(serial_run):
    out, _ = serial_run
    before = (out / "points.csv").read_bytes()
    o = run_sweep(spec(), out, make_backend("serial"))
    assert o.computed == 0 and o.resumed == 8
    assert (out / "points.csv").read_bytes() == before


# the killed sweep: every point sleeps first, so that the kill surely lands mid-way
SLOW_CHILD = """
import sys, time
import llmqueue.lab.point as point
slow = point.simulate_point
def simulate_point(*a, **k):
    time.sleep(0.4)
    return slow(*a, **k)
point.simulate_point = simulate_point
from llmqueue.cli import main
sys.argv = ["llmqueue"] + sys.argv[1:]
main()
"""


def test_killed_sweep_resumes_to_the_same_table(serial_run, tmp_path):
    out, _ = serial_run
    cmd = [sys.executable, "-c", SLOW_CHILD, "sweep", "theorem2", *CLI_AXES, "--out", str(tmp_path),
           "--backend", "serial", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = tmp_path / "points.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") >= 3:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = journal.read_text().count("\n")
    assert 3 <= done < 8, "the sweep should have been killed mid-way"
    res = CliRunner().invoke(app, ["sweep", "theorem2", *CLI_AXES, "--out", str(tmp_path), "--backend", "serial",
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"{8 - done} points computed, {done} resumed" in res.output
    assert (tmp_path / "points.csv").read_bytes() == (out / "points.csv").read_bytes()
    assert len({json.loads(line)["id"] for line in journal.read_text().splitlines()}) == 8


def test_journal_drops_a_line_cut_short(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.record("a", {"x": 0.1})
    j.close()
    with open(path, "a") as fh:
        fh.write('{"id": "b", "row": {"x"')        # a kill in the middle of a write
    j = Journal(path)
    assert "a" in j and "b" not in j
    j.record("b", {"x": 0.2})
    j.record("b", {"x": 0.3})                       # recorded twice: the first row wins
    j.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and Journal(path).get("b") == {"x": 0.2}


def test_other_sweep_in_the_folder_needs_fresh(serial_run):
    out, _ = serial_run
    other = make_spec("theorem2", **{**AXES, "seeds": [3]})
    with pytest.raises(SweepMismatch, match="different sweep"):
        run_sweep(other, out, make_backend("serial"))


def test_ray_matches_local(serial_run, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (optional extra llmqueue[ray])")
    out, _ = serial_run
    o = run_sweep(spec(), tmp_path, make_backend("ray", workers=2))
    assert o.computed == 8
    for f in ("points.csv", "summary.csv"):
        assert (tmp_path / f).read_bytes() == (out / f).read_bytes()


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendError, match=r"pip install 'llmqueue\[ray\]'"):
        make_backend("ray")
    res = CliRunner().invoke(app, ["sweep", "theorem2", "--backend", "ray", "--rates", "0.5", "--horizon", "10"])
    assert res.exit_code == 2 and "llmqueue[ray]" in res.output


def test_engine_that_cannot_form_a_batch_is_unstable(tmp_path):
    sp = make_spec("theorem2", rates=[0.5], policies=["vllm"], token_budgets=[64], seeds=[1], horizon_s=30.0)
    o = run_sweep(sp, tmp_path, make_backend("serial"))
    row = o.points.iloc[0]
    assert row["verdict"] == "unstable" and row["slope_method"] == "engine stalls"
    assert "no batch can be formed" in row["verdict_reason"]


@pytest.mark.parametrize("args,msg", [
    (["--rates", "fast"], "--rates"),
    (["--rates", "0,1"], "every rate must be"),
    (["--policies", "fifo"], "unknown policy 'fifo'"),
    (["--seeds", "x"], "--seeds"),
    (["--max-batch-sizes", "0"], "k_max"),
    (["--horizon", "-5"], "horizon"),
    (["--warmup", "soon"], "warm-up"),
    (["--tolerance", "2"], "tolerance"),
    (["--backend", "cloud"], "unknown backend"),
    (["--bisect", "--bisect-range", "1.5:0.5"], "0 < low < high"),
])
def test_bad_sweep_input_is_one_clear_error(args, msg, tmp_path):
    res = CliRunner().invoke(app, ["sweep", "theorem2", "--out", str(tmp_path), "--quiet", *args])
    assert res.exit_code == 2, res.output
    assert msg in res.output and "Traceback" not in res.output


def test_trace_scenario_cannot_sweep_rates(tmp_path):
    res = CliRunner().invoke(app, ["sweep", "fig8", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "needs a generated workload" in res.output
