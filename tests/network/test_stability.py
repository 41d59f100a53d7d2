"""The issue's checks, by simulation next to the theory:

- spec section 5's Rybko-Stolyar network at rho = 0.9 and 0.95: priority to the exiting classes
  diverges, the reverse priority stays bounded, max-pressure stays bounded, and the fluid model
  agrees in each case; max-pressure's latency against the stabilising priority;
- a DAG + fork-join network with every rho_k = 0.9 is stable under Sarathi-Serve at every
  engine, and the capacity LP's boundary matches simulation within 3% (bounded at 0.97 of it,
  diverging at 1.03);
- join-the-shortest-queue over 4 identical Sarathi engines carries 4 times one engine's capacity
  within 3%.
"""

import pytest

from llmqueue.engine import paper_staircase
from llmqueue.network import JobClass, NetEngine, Network, Step, Workflow, replicas, simulate_network
from llmqueue.network.capacity_lp import max_load_scale
from llmqueue.network.examples import agent_pipeline, rybko_stolyar
from llmqueue.network.fluid import fluid_verdict
from llmqueue.network.metrics import backlog_slope, stability_verdict
from llmqueue.policies import SarathiServe
from llmqueue.workload import Fixed, PoissonArrivals


def rs(rho, rule, horizon, weighting="tokens"):
    return simulate_network(rybko_stolyar(rho, rule, weighting), 1, horizon=horizon, sample_interval=20.0,
                            max_backlog_tokens=1.2e6, validate=False)


@pytest.fixture(scope="module")
def rs_runs():
    runs = {(0.9, "exit"): rs(0.9, "exit", 2500.0), (0.95, "exit"): rs(0.95, "exit", 3000.0)}
    for rho in (0.9, 0.95):
        for rule in ("entry", "max-pressure"):
            runs[(rho, rule)] = rs(rho, rule, 4000.0)
    runs[(0.95, "max-pressure jobs")] = rs(0.95, "max-pressure", 4000.0, "jobs")
    return runs


@pytest.mark.parametrize("rho", [0.9, 0.95])
def test_rybko_stolyar_exit_priority_diverges_the_others_stay_bounded(rs_runs, rho):
    ex, en, mp = rs_runs[(rho, "exit")], rs_runs[(rho, "entry")], rs_runs[(rho, "max-pressure")]
    bounded = max(en.backlog["total_tokens"].max(), mp.backlog["total_tokens"].max())
    assert bounded < 60_000
    for r in (en, mp):
        assert stability_verdict(r) == "bounded"
        assert abs(backlog_slope(r)) < 5          # tokens/s; the exit priority's excursions grow ~100x faster
        s = r.summary()
        assert s["jobs_in_system_at_end"] < 600 and s["tokens_conserved"]
    # growing oscillations: one engine's excursion, then a larger one at the other engine
    assert ex.backlog["total_tokens"].max() > 10 * bounded
    b = ex.backlog
    half = len(b) // 2
    first = b["e1"].idxmax() if b["e1"].iloc[:half].max() > b["e2"].iloc[:half].max() else b["e2"].idxmax()
    assert b["e1"].max() > 100_000 and b["e2"].max() > 100_000
    assert b["total_tokens"].iloc[-1] > 3 * b["total_tokens"].iloc[: max(first - 20, 1)].max() or ex.stopped_early
    # the fluid model agrees with each run
    for rule, expected in (("exit", "diverges"), ("entry", "drains"), ("max-pressure", "drains")):
        assert fluid_verdict(rybko_stolyar(rho, rule)).verdict == expected


def test_max_pressure_latency_against_the_stabilising_priority(rs_runs):
    ref = rs_runs[(0.95, "entry")].summary()["mean_e2el_ms"]
    tokens = rs_runs[(0.95, "max-pressure")].summary()["mean_e2el_ms"]
    jobs = rs_runs[(0.95, "max-pressure jobs")].summary()
    assert stability_verdict(rs_runs[(0.95, "max-pressure jobs")]) == "bounded"
    # weighting in tokens: stable, but about twice the latency; in jobs (Dai-Lin's units): no cost
    assert 1.5 < tokens / ref < 3.0
    assert jobs["mean_e2el_ms"] / ref < 1.1


def test_fork_join_dag_stable_at_rho_09_and_the_lp_boundary_within_3_percent():
    base = agent_pipeline()
    assert max_load_scale(base).theta == pytest.approx(1 / 0.9)     # the LP boundary: rho = 1 everywhere
    stable = simulate_network(base, 1, horizon=1200.0, sample_interval=10.0, validate=False)
    s = stable.summary()
    assert stability_verdict(stable) == "bounded" and s["max_backlog_tokens"] < 200_000
    late = stable.jobs[stable.jobs["completion_time"] > 400.0]          # after the warm-up
    for c in base.classes:
        assert (late["job_class"] == c.name).sum() / 800.0 == pytest.approx(c.rate, rel=0.07)
    below = simulate_network(agent_pipeline(0.97 / 0.9), 1, horizon=3000.0, sample_interval=20.0, validate=False)
    above = simulate_network(agent_pipeline(1.03 / 0.9), 1, horizon=3000.0, sample_interval=20.0, validate=False)
    assert stability_verdict(below) == "bounded"
    assert stability_verdict(above) == "diverges"
    # above the boundary the first engine grows at about the fluid slope 0.03 * 3343 = 100 tokens/s
    assert 50 < backlog_slope(above, column="planner") + backlog_slope(above) / 4 < 300


def _theorem2_pool(n, load):
    """n Sarathi engines behind JSQ, 100 + 100-token requests at ``load`` times their joint capacity."""
    copies, router = replicas(NetEngine("llm", SarathiServe(512), paper_staircase()), n, "jsq")
    lam = load * n * copies[0].capacity / 200
    cls = JobClass("C", PoissonArrivals(lam), Workflow.chain(Step("llm", Fixed(100), Fixed(100))))
    return Network(copies, (cls,), (router,))


def test_jsq_over_four_engines_carries_four_times_one_engine():
    def saturated_throughput(net):
        res = simulate_network(net, 1, horizon=240.0, sample_interval=5.0, validate=False)
        it = [df[df["start_time"] >= 60.0] for df in res.iterations.values()]
        return sum(int((d["prefill_tokens"] + d["decode_tokens"]).sum()) for d in it) / (res.end_time - 60.0)

    one = saturated_throughput(_theorem2_pool(1, 1.2))
    four = saturated_throughput(_theorem2_pool(4, 1.2))
    assert one == pytest.approx(512 / 0.15316, rel=0.01)              # b_max / t(b_max)
    assert four / one == pytest.approx(4.0, rel=0.03)
    # and up to 0.95 of that capacity JSQ stays bounded
    res = simulate_network(_theorem2_pool(4, 0.95), 1, horizon=600.0, sample_interval=5.0, validate=False)
    assert stability_verdict(res) == "bounded" and res.summary()["max_backlog_tokens"] < 100_000
