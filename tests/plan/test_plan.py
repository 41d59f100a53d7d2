"""llmqueue plan: goodput by bisection below the theory's capacity, costs, Pareto front, resume."""

import json
import math

import pytest
from typer.testing import CliRunner

from llmqueue.cli.app import app
from llmqueue.lab.plan import PlanSpec, build_engine, goodput, parse_grid, plan_backend, probe, run_plan
from llmqueue.lab.plan.spec import config_id

SLOS = {"p99_ttft_ms": 1000.0, "p99_tpot_ms": 160.0}


def small(**kw):
    base = dict(scenario="fig1", slos=SLOS, grid=parse_grid(["policy=sarathi,vllm", "token_budget=256,512"]),
                num_requests=400)
    return PlanSpec(**{**base, **kw})


def test_plan_json_shape_order_and_best():
    o = run_plan(small(), None, plan_backend("serial"))
    d = o.to_json()
    assert len(d["configs"]) == 4
    for c in d["configs"]:
        assert set(c["params"]) == {"policy", "token_budget"}
        assert {"max_rate", "p99_ttft_ms", "p99_tpot_ms", "cost_per_mtok"} <= set(c)
        # never above the theory's capacity, and the SLOs hold at the reported goodput
        assert 0 < c["max_rate"] < c["lambda_star"]
        assert c["p99_ttft_ms"] <= 1000 and c["p99_tpot_ms"] <= 160
    costs = [c["cost_per_mtok"] for c in d["configs"]]
    assert costs == sorted(costs)
    assert d["best"]["max_rate"] == max(c["max_rate"] for c in d["configs"])
    # vLLM (no mixing) is far below its lambda*; Sarathi-Serve is close to it (paper Fig. 1)
    by = {(c["params"]["policy"], c["params"]["token_budget"]): c for c in d["configs"]}
    assert by[("vllm", 512)]["max_rate"] < 0.75 * by[("sarathi", 512)]["max_rate"]


def test_best_meets_at_090_and_misses_at_115_on_other_seeds():
    spec = small(num_requests=1000)
    o = run_plan(spec, None, plan_backend("serial"))
    best = o.best
    check = small(num_requests=1000, seeds=(7, 8))
    e = build_engine(check, best["params"])
    assert probe(check, e, 0.9 * best["max_rate"])[0]
    assert not probe(check, e, 1.15 * best["max_rate"])[0]


def test_target_rate_picks_the_cheapest_that_reaches_it():
    o = run_plan(small(), None, plan_backend("serial"), target_rate=5.0)
    ok = [r for r in o.rows if r["max_rate"] >= 5.0]
    assert o.best["cost_per_mtok"] == min(r["cost_per_mtok"] for r in ok)


def test_replicas_are_simulated_behind_the_router_not_multiplied():
    spec = small(grid=parse_grid(["policy=vllm", "token_budget=512", "replicas=1,2"]))
    o = run_plan(spec, None, plan_backend("serial"))
    one, two = sorted(o.rows, key=lambda r: r["params"]["replicas"])
    assert two["gpus"] == 2 and two["lambda_star"] == one["lambda_star"]
    # pooling two engines behind JSQ is not 2x one engine (the SLO is met at a different load)
    assert abs(two["max_rate"] / one["max_rate"] - 2) > 0.05
    e = build_engine(spec, two["params"])
    assert e.replicas == 2
    assert probe(spec, e, two["max_rate"])[0]


def test_resume_recomputes_nothing(tmp_path):
    spec = small()
    first = run_plan(spec, tmp_path, plan_backend("serial"))
    assert first.computed == 4
    again = run_plan(spec, tmp_path, plan_backend("serial"))
    assert again.computed == 0 and again.resumed == 4
    assert again.to_json() == json.loads(json.dumps(first.to_json()))
    # a kill after two configurations: the journal keeps two, the rest is computed
    lines = (tmp_path / "plan.jsonl").read_text().splitlines()
    (tmp_path / "plan.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])
    part = run_plan(spec, tmp_path, plan_backend("serial"))
    assert part.resumed == 2 and part.computed == 2
    assert part.to_json() == again.to_json()
    with pytest.raises(ValueError, match="other settings"):
        run_plan(small(num_requests=500), tmp_path, plan_backend("serial"))


def test_local_processes_give_the_same_rows():
    spec = small()
    a = run_plan(spec, None, plan_backend("serial")).to_json()
    b = run_plan(spec, None, plan_backend("local", 2)).to_json()
    assert a == b


def test_unreachable_tpot_is_pruned_by_the_theory():
    spec = small(slos={"p99_tpot_ms": 5.0})      # the fastest decode step of fig1 takes 46.75 ms
    o = run_plan(spec, None, plan_backend("serial"))
    assert all(r["max_rate"] == 0 and r["probes"] == 0 and r["pruned"] for r in o.rows)
    assert o.best is None


def test_cli_json_and_errors(tmp_path):
    r = CliRunner().invoke(app, ["plan", "fig1", "--slo", "p99_ttft_ms=1000", "--slo", "p99_tpot_ms=160",
                                 "--grid", "policy=sarathi", "--grid", "token_budget=256,512", "--requests", "300",
                                 "--workers", "1", "--json", "--quiet", "--price", "a100=1.0"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert [c["params"]["token_budget"] for c in d["configs"]]
    assert d["best"]["params"] == max(d["configs"], key=lambda c: c["max_rate"])["params"]
    for bad, msg in ((["--slo", "p99_foo_ms=3"], "--slo"), (["--slo", "p99_ttft_ms=1", "--grid", "colour=red"],
                                                            "--grid"),
                     (["--slo", "p99_ttft_ms=1", "--price", "h100"], "--price"), ([], "at least one --slo"),
                     (["--slo", "p99_ttft_ms=1", "--grid", "gpu=h100"], "gpu-profile")):
        r = CliRunner().invoke(app, ["plan", "fig1", "--quiet", "--workers", "1", *bad])
        assert r.exit_code == 2, (bad, r.output)
        assert msg in r.output and "Traceback" not in r.output


def test_attainment_mode():
    spec = small(attainment=0.9, slos={"p99_ttft_ms": 300.0}, grid=parse_grid(["policy=sarathi"]))
    o = run_plan(spec, None, plan_backend("serial"))
    r = o.rows[0]
    assert r["attainment"] >= 0.9 and math.isfinite(r["max_rate"]) and r["max_rate"] > 0
    assert config_id(r["params"])


def test_default_goodput_is_stable_across_seeds():
    # benchmarks/plan_accuracy.py: at the default run length one seed's goodput has a standard
    # deviation of about 2-3% around the brute force (Fig. 1, these SLOs); three seeds' estimates
    # stay within 12% of each other (~4 standard deviations of their spread)
    params = {"policy": "sarathi", "token_budget": 512}
    got = []
    for seed in (1, 2, 3):
        spec = PlanSpec("fig1", slos=SLOS, seeds=(seed,))
        got.append(goodput(spec, build_engine(spec, params))["max_rate"])
    assert min(got) > 0
    assert max(got) / min(got) - 1 <= 0.12, got
