"""The pd-split experiment's parts on small cases (the whole run is `reproduce pd-split --fast`)."""

from __future__ import annotations

from llmqueue.experiments import pd_split as pd
from llmqueue.network.pd_split import colocated_rate


def test_capacity_bounds_reproduce_distserve_direction():
    """Tight TPOT SLO: the colocated budget is cut and the split carries more; loose: colocation does."""
    for slo, disagg_wins in ((pd.TPOT_SLOS["tight"], True), (pd.TPOT_SLOS["loose"], False)):
        split = pd.lp_split(8, slo)
        colo, _ = colocated_rate(pd.engines(slo)[2], 8, pd.PROMPT.mean, pd.DECODE.mean, slo)
        assert (split.rate > colo) == disagg_wins, (slo, split.rate, colo)


def test_slo_attainment_and_goodput_small():
    for kind in ("colocated", "disaggregated"):
        low = pd.slo_attainment(kind, 3, 2, 1.0, 40.0, pd.TPOT_SLOS["tight"])
        assert low["attainment"] == 1.0 and low["jobs"] > 10
        over = pd.slo_attainment(kind, 3, 2, 40.0, 40.0, pd.TPOT_SLOS["tight"])
        assert over["attainment"] < 0.5
    g = pd.goodput("disaggregated", 3, 2, pd.TPOT_SLOS["tight"], 20.0, 30.0, 3)
    assert 0 < g["goodput"] < 20.0 and len(g["tried"]) == 3
