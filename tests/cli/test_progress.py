"""Progress of the long commands: the library calls ``progress(done, total)`` with advancing
counts; the command line draws a bar only for a terminal, so pipes and tests stay clean."""

from __future__ import annotations

import io

import pytest

from llmqueue.cli import progress as cli_progress
from llmqueue.cli.progress import progress_bar
from llmqueue.experiments import experiment
from llmqueue.experiments.common import pmap
from llmqueue.network.runner import run_tasks


def _square(x: int) -> int:
    return x * x


def _advancing(calls: list[tuple[int, int]], n: int) -> None:
    assert [d for d, _ in calls] == list(range(1, n + 1))
    assert {t for _, t in calls} == {n}


@pytest.mark.parametrize("workers", [1, 2])
def test_pmap_reports_each_finished_run(workers):
    calls: list[tuple[int, int]] = []
    assert pmap(_square, [(i,) for i in range(5)], workers=workers,
                progress=lambda d, t: calls.append((d, t))) == [0, 1, 4, 9, 16]
    _advancing(calls, 5)


@pytest.mark.parametrize("workers", [1, 2])
def test_run_tasks_reports_each_finished_task(workers):
    calls: list[tuple[int, int]] = []
    assert run_tasks([(_square, (i,)) for i in range(4)], workers,
                     progress=lambda d, t: calls.append((d, t))) == [0, 1, 4, 9]
    _advancing(calls, 4)


def test_an_experiment_reports_progress(tmp_path):
    calls: list[tuple[int, int]] = []
    experiment("fig8").run(tmp_path, fast=True, progress=lambda d, t: calls.append((d, t)))
    _advancing(calls, 4)
    assert (tmp_path / "result.json").is_file()


def test_no_bar_without_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress_bar("runs") as p:
        assert p is None
    assert not cli_progress.wanted()


def test_bar_when_asked(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with progress_bar("runs", enabled=True) as p:
        assert p is not None
        for k in range(1, 4):
            p(k, 3)
    with progress_bar("runs", quiet=True) as q:
        assert q is None


def test_reproduce_prints_no_bar_into_a_pipe(tmp_path):
    from typer.testing import CliRunner

    from llmqueue.cli import app
    r = CliRunner().invoke(app, ["reproduce", "fig8", "--out", str(tmp_path / "f8")])
    assert r.exit_code == 0, r.output
    assert "━" not in r.output and "ETA" not in r.output and "runs" not in r.output.split("\n")[0]


def test_a_network_run_reports_simulated_seconds():
    from llmqueue.config import load_scenario
    net = load_scenario("rybko-stolyar").build_network()
    calls: list[tuple[int, int]] = []
    from llmqueue.network.simulator import simulate_network
    plain = simulate_network(net, 1, horizon=100.0, sample_interval=10.0)
    res = simulate_network(net, 1, horizon=100.0, sample_interval=10.0, progress=lambda d, t: calls.append((d, t)))
    assert [d for d, _ in calls] == list(range(10, 101, 10)) and {t for _, t in calls} == {100}
    assert res.summary().to_dict() == plain.summary().to_dict()     # watching does not change the run


def test_profile_measuring_reports_each_timed_iteration():
    pytest.importorskip("torch")
    from llmqueue.real.checkpoint import load_model
    from llmqueue.real.profiling import Grid, measure
    from llmqueue.real.runner import ModelRunner
    runner = ModelRunner(load_model("tiny", seed=0), block_size=16, num_blocks=64)
    grid = Grid(prefill=(0, 8), decode=(0, 1), context=(16,), prefill_context=(0,), repeats=2)
    calls: list[tuple[int, int]] = []
    raw = measure(runner, grid, warmup=0, cold=False, progress=lambda d, t: calls.append((d, t)))
    n = len(grid.cells()) * grid.repeats
    assert len(raw) == n
    _advancing(calls, n)


@pytest.mark.parametrize("memory", [False, True], ids=["fast-core", "engine-core"])
def test_single_engine_simulate_reports_simulated_seconds_and_changes_nothing(memory):
    """`simulate` on one engine: the fast core reports after every epoch, the engine core every
    4096 events; the counts advance towards the expected span and the run is the same without."""
    from llmqueue.config import load_scenario
    from llmqueue.run import simulate_scenario
    n = 20_000 if memory else 300_000
    ov = {"workload.num_requests": n, "seed": 3}
    if memory:
        ov["engine.memory"] = {"capacity_tokens": 200_000}
    sc = load_scenario("fig1", ov)
    calls: list[tuple[int, int]] = []
    watched = simulate_scenario(sc, progress=lambda d, t: calls.append((d, t)))
    plain = simulate_scenario(sc)
    assert len(calls) >= 2
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] > 0
    assert all(d <= t for d, t in calls)
    span = n / sc.build_workload().arrival_rate
    assert calls[0][1] == int(span)        # the total is the expected span of the arrivals
    assert watched.summary().to_dict() == plain.summary().to_dict()
