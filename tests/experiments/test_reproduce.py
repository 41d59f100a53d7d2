"""The experiments: Fig. 8 in full, the others in their --fast form (llmqueue.experiments)."""

import inspect
import json
import types

import pytest
from PIL import Image
from typer.testing import CliRunner

from llmqueue import experiments as reproduce
from llmqueue.cli import app
from llmqueue.experiments import EXPERIMENTS, Experiment


def check_outputs(out, name):
    res = json.loads((out / "result.json").read_text())
    assert res["experiment"] == name and res["findings"] and res["figures"]
    for fig in res["figures"]:
        with Image.open(out / fig) as im:
            assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 200
    return res


def test_fig8_reproduces_the_paper(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "fig8", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "4 of 4 policies reproduce the paper's Fig. 8 batch sequences exactly" in res.output
    out = check_outputs(tmp_path, "fig8")
    assert all(v["match"] for v in out["numbers"].values())
    assert out["numbers"]["sarathi"]["simulated"] == "[Ad Bd Cd] [Ad Bd Cd Dp] [Bd Cd Dd Ep] [Bd Ed]"


def test_vertex_c_fast(tmp_path):
    res = reproduce.run_experiment("vertex-c", tmp_path, fast=True)
    check_outputs(tmp_path, "vertex-c")
    by = {(c["policy"], c["token_budget"]): c for c in res["numbers"]["configs"]}
    assert by[("sarathi", 128)]["max_in_system"] <= 102
    assert by[("fastertransformer", 128)]["verdict"] == "cannot form a batch"
    assert by[("vllm", 128)]["verdict"] == "cannot form a batch"
    assert by[("sarathi", 128)]["region_scale_theta"] == pytest.approx(1.0, abs=1e-9)
    assert by[("orca", 128)]["end_in_system"] > 110 and by[("sarathi", 1024)]["end_in_system"] > 110


def test_contrast_fast(tmp_path):
    res = reproduce.run_experiment("stability-contrast", tmp_path, fast=True)
    check_outputs(tmp_path, "stability-contrast")
    sub = [p for name, p in res["numbers"]["panels"].items() if "lambda*" in name][0]
    assert sub["policies"]["fastertransformer"]["verdict"] == "unstable"
    assert sub["policies"]["vllm"]["slope"] > 100


def test_theorem2_and_token_budget_fast(tmp_path):
    res = reproduce.run_experiment("theorem2", tmp_path / "t2", fast=True)
    check_outputs(tmp_path / "t2", "theorem2")
    pts = {round(p["rate_rel"], 3): p for p in res["numbers"]["points"]}
    assert pts[0.6]["verdict"] != "unstable" and pts[1.4]["verdict"] == "unstable" and pts[1.4]["fluid_in_ci"]
    res = reproduce.run_experiment("token-budget", tmp_path / "tb", fast=True)
    check_outputs(tmp_path / "tb", "token-budget")
    pts = {p["token_budget"]: p for p in res["numbers"]["points"]}
    assert pts[64]["verdict"] == "unstable" and pts[1024]["p99_itl_ms"] > pts[256]["p99_itl_ms"]


def test_registry_dispatches_with_fast(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("fake_experiment")
    fake.run = lambda out, *, fast=False: calls.append((out, fast)) or {"findings": ["ok"], "figures": []}
    fake.SIZES = {False: {}, True: {}}
    monkeypatch.setitem(reproduce._BY_NAME, "fork-join", Experiment("fork-join", "fake", "network", lambda: fake))
    assert {"rybko-stolyar", "fork-join", "memory-bound"} <= set(reproduce.experiment_names())
    for argv, fast in ((["--fast"], True), ([], False)):
        # --force: the second run goes into the folder the first one sealed (refused without it)
        res = CliRunner().invoke(app, ["reproduce", "fork-join", "--out", str(tmp_path), "--force", *argv])
        assert res.exit_code == 0, res.output
        assert calls[-1] == (tmp_path, fast)


def _smaller(fast, full) -> bool:
    """Every size parameter of ``fast`` at most the full one (tuples by length), one strictly smaller."""
    def size(x):
        return len(x) if isinstance(x, (tuple, list)) else x
    assert fast.keys() == full.keys()
    pairs = [(size(fast[k]), size(full[k])) for k in full]
    return all(a <= b for a, b in pairs) and any(a < b for a, b in pairs)


def test_every_experiment_has_one_signature_and_a_smaller_fast_size():
    assert [e.name for e in EXPERIMENTS] == ["fig8", "stability-contrast", "theorem2", "vertex-c", "token-budget",
                                             "rybko-stolyar", "fork-join", "memory-bound", "pd-split", "kv-cache",
                                             "cache-routing", "agent-retention"]
    for e in EXPERIMENTS:
        params = inspect.signature(e.module().run).parameters
        assert list(params)[0] == "out" and params["fast"].kind is inspect.Parameter.KEYWORD_ONLY, e.name
        if e.name == "fig8":     # the five-request worked example runs whole (about a second)
            assert e.sizes(True) == e.sizes(False) == {}
        else:
            assert _smaller(e.sizes(True), e.sizes(False)), e.name


def test_list_shows_every_experiment_with_its_label():
    res = CliRunner().invoke(app, ["reproduce", "--list"])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    for e in EXPERIMENTS:
        line = next(ln for ln in lines if ln.startswith(e.name + " "))
        assert e.label[:40] in line and f"({e.area})" in line


def test_unknown_experiment(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "fig9", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown experiment 'fig9'" in res.output
    res = CliRunner().invoke(app, ["reproduce", "--list"])
    assert res.exit_code == 0 and "vertex-c" in res.output and "token-budget" in res.output
