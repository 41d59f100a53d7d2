"""Network theory: traffic equations and rho_k, the load-scaling LP and its bottleneck, the
virtual-station condition, the capacity verdict, and the fluid model against closed forms."""

import numpy as np
import pytest

from llmqueue.engine import ConstantBatchTime, paper_staircase
from llmqueue.network import JobClass, NetEngine, Network, Router, Step, Workflow, replicas
from llmqueue.network.capacity import network_capacity
from llmqueue.network.capacity_lp import max_load_scale
from llmqueue.network.examples import agent_pipeline, rs_rate, rybko_stolyar
from llmqueue.network.fluid import FluidModel, fluid_verdict
from llmqueue.network.traffic import engine_cycles, rho, step_loads, visit_routes, visit_tokens
from llmqueue.network.virtual_station import rybko_stolyar as virtual_station
from llmqueue.policies import SarathiServe
from llmqueue.workload import Fixed, PoissonArrivals


def test_rybko_stolyar_loads_and_lp():
    net = rybko_stolyar(0.9, "exit")
    assert rs_rate(0.9) == pytest.approx(0.9 * 768 / 608)
    r = rho(net)
    assert r["e1"] == pytest.approx(0.9) and r["e2"] == pytest.approx(0.9)
    lp = max_load_scale(net)
    assert lp.theta == pytest.approx(1 / 0.9)
    assert set(lp.bottleneck) == {"e1", "e2"}
    assert engine_cycles(net) == [["e1", "e2"]] or engine_cycles(net) == [["e2", "e1"]]
    assert visit_routes(net)["A1"] == (("A2", 1.0),) and visit_routes(net)["A2"] == ()
    assert visit_tokens(net)["A2"] == 544


def test_traffic_with_forks_repeats_and_routing():
    e = NetEngine("e", SarathiServe(512), paper_staircase())
    f = NetEngine("f", SarathiServe(512), paper_staircase())
    wf = Workflow.routing("a", [Step("e", Fixed(100), Fixed(20), name="a", next={"b": 0.5}),
                                Step("f", Fixed(50), Fixed(10), name="b", next={"a": 0.5}, repeat=0.5)])
    net = Network((e, f), (JobClass("C", PoissonArrivals(2.0), wf),))
    # visits: a = 1 + 0.5 b, b = 0.5 a + 0.5 b  ->  a = 2, b = 2
    loads = {s.step: s for s in step_loads(net)}
    assert loads["a"].visits_per_job == pytest.approx(4 / 3) and loads["b"].visits_per_job == pytest.approx(4 / 3)
    assert loads["a"].tokens_per_s == pytest.approx(2.0 * 4 / 3 * 120)
    cap = e.capacity
    assert rho(net)["e"] == pytest.approx(2.0 * 4 / 3 * 120 / cap)
    routes = visit_routes(net)
    assert dict(routes["C.b"]) == {"C.b": 0.5, "C.a": 0.25}
    fj = agent_pipeline()
    assert all(x == pytest.approx(0.9) for x in rho(fj).values())
    assert engine_cycles(fj) == []
    join = dict(visit_routes(fj)["fj.search"])
    assert join == {"fj.writer": 0.5}     # one of two branches of the join


def test_lp_balances_unequal_replicas_and_round_robin_does_not():
    fast = NetEngine("fast", SarathiServe(512), ConstantBatchTime(0.1))   # 5120 tokens/s
    slow = NetEngine("slow", SarathiServe(512), ConstantBatchTime(0.2))   # 2560 tokens/s
    wf = Workflow.chain(Step("pool", Fixed(400), Fixed(112)))
    cls = JobClass("C", PoissonArrivals(10.0), wf)                           # 5120 tokens/s offered
    for rule, theta in (("jsq", 7680 / 5120), ("least_tokens", 1.5), ("round_robin", 2560 / 2560)):
        net = Network((fast, slow), (cls,), (Router("pool", ("fast", "slow"), rule),))
        lp = max_load_scale(net)
        assert lp.theta == pytest.approx(theta), rule
        if rule == "round_robin":
            assert lp.bottleneck == ("slow",)
        else:
            assert set(lp.bottleneck) == {"fast", "slow"}
    copies, router = replicas(NetEngine("llm", SarathiServe(512), paper_staircase()), 4, "jsq")
    single = Network((NetEngine("llm", SarathiServe(512), paper_staircase()),), (JobClass("C", PoissonArrivals(1.0),
                     Workflow.chain(Step("llm", Fixed(100), Fixed(100)))),))
    pool = Network(copies, single.classes, (router,))
    assert max_load_scale(pool).theta == pytest.approx(4 * max_load_scale(single).theta)


def test_virtual_station_closed_form():
    vs = virtual_station(rybko_stolyar(0.9, "exit"))
    assert vs.priority == "exit"
    assert vs.rho_v == pytest.approx(1088 / 608 * 0.9)          # 1.6105
    assert vs.exit_scale_limit == pytest.approx(608 / 1088 / 0.9)
    assert "unstable" in vs.verdict
    assert virtual_station(rybko_stolyar(0.9, "entry")).priority == "entry"
    assert virtual_station(rybko_stolyar(0.9, "max-pressure")).priority == "other"
    assert virtual_station(agent_pipeline()) is None


@pytest.mark.parametrize("rule,expected", [("exit", "unstable"), ("entry", "stable"), ("max-pressure", "stable")])
def test_capacity_report_verdicts(rule, expected):
    rep = network_capacity(rybko_stolyar(0.9, rule))
    assert rep.stable == expected
    assert not rep.feedforward and rep.theta_star == pytest.approx(1 / 0.9)
    assert rep.fluid["verdict"] == ("diverges" if rule == "exit" else "drains")


def test_capacity_report_feedforward_and_overload():
    rep = network_capacity(agent_pipeline(), fluid=False)
    assert rep.stable == "stable" and rep.feedforward
    assert any("feedforward" in v for v in rep.verdict)
    over = network_capacity(agent_pipeline(1.2), fluid=False)
    assert over.stable == "unstable" and over.theta_star == pytest.approx(1 / 1.08)


def test_fluid_single_engine_drains_and_grows_at_the_theorem2_slopes():
    e = NetEngine("e", SarathiServe(768), ConstantBatchTime(1.0))        # 768 tokens/s
    for load, w0 in ((0.5, 768_000.0), (1.25, 0.0)):
        lam = load * 768 / 96
        net = Network((e,), (JobClass("C", PoissonArrivals(lam), Workflow.chain(Step("e", Fixed(64), Fixed(32)))),))
        df = FluidModel(net).integrate({"C.s0": w0}, 4000.0, 4000)
        if load < 1:   # drains at (1 - rho) * capacity: 768000 / 384 = 2000 s
            t_empty = df["time"][df["total"] <= 1.0].iloc[0]
            assert t_empty == pytest.approx(2000, rel=0.01)
        else:
            slope = np.polyfit(df["time"], df["total"], 1)[0]
            assert slope == pytest.approx(0.25 * 768, rel=1e-3)


def test_fluid_rybko_stolyar_matches_the_virtual_station_threshold():
    # exit priority: stable iff rho_v = (1088 / 608) rho < 1, i.e. rho < 0.559
    assert fluid_verdict(rybko_stolyar(0.5, "exit")).verdict == "drains"
    assert fluid_verdict(rybko_stolyar(0.62, "exit")).verdict == "diverges"
    for rule in ("entry", "fcfs", "max-pressure"):
        assert fluid_verdict(rybko_stolyar(0.95, rule)).verdict == "drains", rule
    # the work-conserving variant of max-pressure with V = sum W^2 keeps feeding the congested buffer
    assert fluid_verdict(rybko_stolyar(0.9, "max-pressure", "work", serve_nonpositive=True)).verdict == "diverges"


def test_fluid_join_waits_for_the_slowest_branch():
    from llmqueue.network import Parallel
    fast = NetEngine("fast", SarathiServe(100), ConstantBatchTime(1.0))      # 100 tokens/s
    slow = NetEngine("slow", SarathiServe(100), ConstantBatchTime(1.0))
    out = NetEngine("out", SarathiServe(10), ConstantBatchTime(1.0))         # 10 tokens/s
    wf = Workflow.chain(Parallel(Step("fast", Fixed(10), Fixed(0), name="f"), Step("slow", Fixed(40), Fixed(0),
                                                                                   name="s")),
                        Step("out", Fixed(20), Fixed(0), name="j"))
    net = Network((fast, slow, out), (JobClass("C", PoissonArrivals(1e-9), wf),))
    # 100 jobs in both branches: the fast one is done by 10 s, the slow one by 40 s; joins follow the slow
    # branch (2.5 jobs/s = 50 tokens/s into `out`, which serves 10 tokens/s), not the fast one
    df = FluidModel(net).integrate({"C.f": 1000, "C.s": 4000}, 60.0, 6000).set_index("time")
    at = lambda t, col: df[col].iloc[np.searchsorted(df.index, t)]  # noqa: E731
    assert at(10.0, "C.f") < 1 and at(10.0, "C.j") == pytest.approx(400, rel=0.02)
    assert at(40.0, "C.s") < 1 and at(40.0, "C.j") == pytest.approx(1600, rel=0.02)
    assert at(55.0, "C.j") == pytest.approx(1450, rel=0.02)
