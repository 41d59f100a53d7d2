"""``reproduce --fast`` of the network and memory experiments: smaller, and still showing the effect.

On the old main ``--fast`` was dropped on its way to these experiments (they always ran full size).
"""

import json

from llmqueue.experiments import experiment, run_experiment


def test_memory_bound_fast(tmp_path):
    res = run_experiment("memory-bound", tmp_path, fast=True)
    assert res["horizon_s"] == 40.0 < experiment("memory-bound").sizes(False)["horizon_s"]
    rows = res["sweep"]
    assert len(rows) == 6 and all(r["binding"] == r["empirical_binding"] for r in rows)
    assert {r["binding"] for r in rows} == {"memory", "compute"}
    assert max(abs(r["threshold_error"]) for r in rows) < 0.2
    cmp_ = res["overload_comparison"]
    assert cmp_["vllm-v1"]["preemptions"] > 0 == cmp_["threshold-mean"]["preemptions"]
    assert json.loads((tmp_path / "result.json").read_text())["experiment"] == "memory-bound"


def test_rybko_stolyar_fast(tmp_path):
    res = run_experiment("rybko-stolyar", tmp_path, fast=True)
    full = experiment("rybko-stolyar").sizes(False)
    assert res["horizon_s"] < full["horizon_s"] and res["rhos"] == [0.95]
    verdict = {r["name"]: r["verdict"] for r in res["runs"]}
    assert verdict == {"exit": "diverges", "entry": "bounded", "max-pressure": "bounded",
                       "max-pressure (jobs)": "bounded"}
    assert (tmp_path / "rybko_stolyar_backlog.png").exists()


def test_fork_join_fast(tmp_path):
    res = run_experiment("fork-join", tmp_path, fast=True)
    assert res["horizon_s"] == 750.0 < experiment("fork-join").sizes(False)["horizon_s"]
    assert res["bracket"]["sarathi"] == {"largest_bounded_rho": 0.97, "smallest_diverging_rho": 1.03}


def test_agent_retention_fast(tmp_path):
    res = run_experiment("agent-retention", tmp_path, fast=True)
    assert res["duration_s"] == 60.0 < experiment("agent-retention").sizes(False)["duration_s"]
    by = {(r["capacity"], r["eviction"]): r for r in res["rows"]}
    ceiling = res["ceiling"]["hit_rate"]
    assert by[(12288, "workflow")]["hit_rate"] > by[(12288, "lru")]["hit_rate"] + 0.1
    assert all(r["hit_rate"] <= ceiling + 1e-12 for r in res["rows"])
    assert by[(24576, "workflow")]["hit_rate"] == ceiling          # ample: every rule reaches it
    assert (tmp_path / "agent_retention.png").exists()
