"""A run estimates its memory before it starts (issue 16 point 4): records that would not fit
are streamed (same summary), a state that cannot fit is refused with the estimate and the free
memory; 10^6 requests of Fig. 1 peak under 1 GB (2.9 GB before)."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.config import load_scenario
from llmqueue.run import simulate_scenario
from llmqueue.sim.fast.result import StreamedResult
from llmqueue.sim.footprint import Footprint, RunTooLarge, estimate, free_memory, human, plan_run
from llmqueue.sim.result import SimResult


def test_plan_run_streams_or_refuses():
    fp = Footprint(requests=1e6, records_bytes=3e9, state_bytes=1e6)
    assert plan_run(fp, can_stream=True, free=8 << 30) is False          # fits: kept in memory
    assert plan_run(fp, can_stream=True, free=4 << 30) is True           # more than half the free memory
    assert plan_run(fp, can_stream=True, stream_above=1e8, free=64 << 30) is True
    with pytest.raises(RunTooLarge) as e:                               # cannot stream, does not fit
        plan_run(fp, can_stream=False, free=2 << 30)
    assert "2 GB free" in str(e.value) and "2.79 GB" in str(e.value) and "cannot be streamed" in str(e.value)
    big = Footprint(requests=1e9, records_bytes=1e12, state_bytes=5e11)
    with pytest.raises(RunTooLarge, match="466 GB of in-system state"):
        plan_run(big, can_stream=True, free=64 << 30)
    assert free_memory() is None or free_memory() > 0
    assert human(1536) == "1.5 KB"


def test_the_estimate_grows_with_the_load():
    sc = load_scenario("fig1", {"workload.num_requests": 10**6})
    w = sc.build_workload()
    stable = estimate(w, 512, rho=0.94)
    over = estimate(w, 512, rho=2.0)
    assert stable.state_bytes == 0 and over.state_bytes == pytest.approx(1e6 * 0.5 * 1500)
    assert 1e9 < stable.records_bytes < 1e10          # the in-memory run of main peaked at 2.9 GB
    assert estimate(w, 512, horizon=100.0).requests == pytest.approx(1300)


def test_a_streamed_run_has_the_same_summary():
    sc = load_scenario("fig1", {"workload.num_requests": 3000})
    mem = simulate_scenario(sc)
    streamed = simulate_scenario(sc, stream_above=0)
    assert isinstance(mem, SimResult) and isinstance(streamed, StreamedResult)
    assert mem.summary() == streamed.summary()


def test_an_overloaded_run_that_cannot_fit_is_refused():
    r = CliRunner().invoke(app, ["simulate", "fig1", "--request-rate", "30", "--num-requests", "900000000"])
    flat = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "of memory" in flat and "free" in flat and "in-system state" in flat


def test_a_million_requests_peak_under_1_gb():
    """The command runs as the only child of a small wrapper that reports its children's peak
    (Linux carries a parent's ru_maxrss over fork and exec, and this test process may be large)."""
    cli = [sys.executable, "-m", "llmqueue", "simulate", "fig1", "--num-requests", "1000000"]
    code = ("import resource, subprocess, sys\n"
            f"r = subprocess.run({cli!r}, capture_output=True, text=True)\n"
            "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(r.returncode)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "requests: 1000000 (1000000 completed" in r.stdout
    peak_kb = int(r.stdout.rsplit("PEAK_KB", 1)[1].split()[0])
    assert 0 < peak_kb < 1 << 20, f"peak RSS {peak_kb / 1024:.0f} MB"


def test_a_network_run_estimates_its_memory_first():
    from llmqueue.network.simulator import check_memory
    net = load_scenario("rybko-stolyar").build_network()
    fp = check_memory(net, 12000.0, free=64 << 30)
    assert fp.requests == pytest.approx(2 * 1.1368421052631579 * 2 * 12000)
    with pytest.raises(RunTooLarge, match="this network run would need about .* free .*simulation.horizon_s"):
        check_memory(net, 1e9, free=64 << 30)
    r = CliRunner().invoke(app, ["simulate", "rybko-stolyar", "--horizon", "1e12"])
    assert r.exit_code == 2 and "Traceback" not in r.output and "of memory" in " ".join(r.output.split())
