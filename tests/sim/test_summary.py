"""The typed summary: summary.json byte for byte what main a541354 wrote (data/, from
make_summary_baselines.py), from_dict/to_dict round trips, and report refusing a malformed one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from llmqueue.errors import ReportError
from llmqueue.sim.summary import LatencyStats, NetworkSummary, RunSummary, SummaryError

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(Path(__file__).parent))
from make_summary_baselines import write_all  # noqa: E402


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("runs"))


@pytest.mark.parametrize("name", ["plain", "memory", "streamed", "to_disk", "network"])
def test_summary_json_is_byte_identical_to_main(written, name):
    assert written[name].read_text() == (DATA / f"{name}_summary.json").read_text()


@pytest.mark.parametrize("name", ["plain", "memory", "streamed", "to_disk", "network"])
def test_from_dict_to_dict_round_trip(name):
    d = json.loads((DATA / f"{name}_summary.json").read_text())
    cls = NetworkSummary if name == "network" else RunSummary
    s = cls.from_dict(d)
    assert s.to_dict() == d and list(s.to_dict()) == list(d)
    assert cls.from_dict(s.to_dict()) == s


def test_typed_fields():
    d = json.loads((DATA / "memory_summary.json").read_text())
    s = RunSummary.from_dict(d)
    assert isinstance(s.ttft, LatencyStats) and s.ttft.p99 == d["p99_ttft_ms"]
    assert s.memory is not None and s.memory.preemptions == d["preemptions"]
    assert s.memory.prefix_cache_hit_tokens == d["prefix_cache_hit_tokens"]
    assert s["p99_ttft_ms"] == s.ttft.p99 and "preemptions" in s and s.get("nope") is None
    plain = RunSummary.from_dict(json.loads((DATA / "plain_summary.json").read_text()))
    assert plain.memory is None and plain.extra["capacity"] == {"rho": 0.5}
    net = NetworkSummary.from_dict(json.loads((DATA / "network_summary.json").read_text()))
    assert net.engines["f"].preemptions == 0 and net.engines["e"].preemptions is None
    assert net.classes["C"].e2el.mean == net.e2el.mean


def test_malformed_summary_is_refused():
    d = json.loads((DATA / "plain_summary.json").read_text())
    with pytest.raises(SummaryError, match="p99_ttft_ms"):
        RunSummary.from_dict({k: v for k, v in d.items() if k != "p99_ttft_ms"})
    with pytest.raises(SummaryError, match="completed"):
        RunSummary.from_dict({**d, "completed": "many"})


def test_report_refuses_a_malformed_summary_in_one_line(written, tmp_path):
    from llmqueue.lab.report import build_report
    folder = written["plain"].parent
    (folder / "summary.json").write_text(json.dumps({"policy": "x"}))
    from llmqueue.sim.manifest import seal
    seal(folder, "simulate")      # a sealed folder whose summary is malformed (an unsealed one is refused first)
    with pytest.raises(ReportError) as e:
        build_report(folder, tmp_path / "r.html")
    assert "\n" not in str(e.value) and "not a run summary" in str(e.value)
