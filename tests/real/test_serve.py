"""The online loop: wall-clock injection, the simulator's bookkeeping and output format, horizons
and stalls. The loop itself is tested with a runner that only sleeps (no torch), then once with
the tiny model."""

import math
import time

import numpy as np
import pytest

from llmqueue import ConstantBatchTime, Request, make_policy, simulate
from llmqueue.real.serve import serve
from llmqueue.sim import EngineStalled
from llmqueue.sim.output import write_run
from llmqueue.workload import Fixed, PoissonArrivals, Uniform, Workload

DT = 0.004


class SleepRunner:
    """Stands in for the model: every iteration takes DT seconds of wall clock."""

    def __init__(self):
        self.added, self.released = [], []

    def add(self, request):
        self.added.append(request.request_id)

    def execute(self, plan):
        time.sleep(DT)

    def release(self, rid):
        self.released.append(rid)


def workload(rate=60.0, n=40, seed=3):
    wl = Workload(arrival=PoissonArrivals(rate), prompt_tokens=Uniform(1, 12), decode_tokens=Uniform(1, 6),
                  num_requests=n)
    return list(wl.requests(seed))


def test_loop_injects_at_arrival_times_and_keeps_the_books():
    reqs = workload()
    runner = SleepRunner()
    res = serve(make_policy("sarathi", 16), reqs, runner, record_composition=True)
    it, rq = res.iterations, res.requests
    assert res.tokens_arrived == res.tokens_processed == sum(r.total_tokens for r in reqs)
    assert res.tokens_left == 0 and rq["completion_time"].notna().all()
    assert sorted(runner.added) == sorted(runner.released) == [r.request_id for r in reqs]
    # iterations follow one another and each lasts at least the sleep
    assert (it["end_time"] - it["start_time"] >= DT * 0.99).all()
    assert (it["start_time"].to_numpy()[1:] >= it["end_time"].to_numpy()[:-1]).all()
    # no request is scheduled before it arrives; completion after arrival
    arrival = {r.request_id: r.arrival_time for r in reqs}
    for plan, start in zip(res.compositions, it["start_time"]):
        assert all(arrival[rid] <= start for rid in plan.request_ids())
    assert (rq["completion_time"] > rq["arrival_time"]).all()
    # the engine idles between sparse arrivals
    assert res.summary()["busy_fraction"] < 0.9


def test_loop_agrees_with_the_simulator_on_a_constant_batch_time():
    reqs = workload(rate=40.0, n=30)
    real = serve(make_policy("orca", 16), reqs, SleepRunner())
    sim = simulate(make_policy("orca", 16), ConstantBatchTime(DT), reqs)
    # sleeping overshoots a little (and more on a busy machine), so the real run is never faster
    e2e_real = real.summary()["mean_e2el_ms"]
    e2e_sim = sim.summary()["mean_e2el_ms"]
    assert e2e_sim * 0.99 <= e2e_real < e2e_sim * 3
    assert abs(len(real.iterations) - len(sim.iterations)) <= 0.5 * len(sim.iterations)


def test_horizon_leaves_unfinished_requests_with_empty_times():
    reqs = [Request(i, 0.0, 4, 50) for i in range(3)]
    res = serve(make_policy("sarathi", 8), reqs, SleepRunner(), horizon=0.05)
    assert res.end_time >= 0.05
    assert res.requests["completion_time"].isna().all()
    assert res.tokens_arrived == res.tokens_processed + res.tokens_left and res.tokens_left > 0


def test_stall_and_unsorted_input_are_clear_errors():
    with pytest.raises(EngineStalled, match="no batch"):
        serve(make_policy("vllm", 8), [Request(0, 0.0, 20, 2)], SleepRunner())
    with pytest.raises(ValueError, match="sorted by arrival"):
        serve(make_policy("sarathi", 8), [Request(0, 0.02, 2, 2), Request(1, 0.01, 2, 2)], SleepRunner())
    with pytest.raises(ValueError, match="horizon"):
        serve(make_policy("sarathi", 8), [], SleepRunner(), horizon=0)


def test_real_model_run_writes_the_simulators_files(tmp_path):
    torch = pytest.importorskip("torch")
    from llmqueue.real.config import preset
    from llmqueue.real.model import build_model
    from llmqueue.real.runner import ModelRunner
    torch.set_num_threads(1)
    runner = ModelRunner(build_model(preset("tiny"), seed=0), num_blocks=8)
    wl = Workload(arrival=PoissonArrivals(80.0), prompt_tokens=Uniform(4, 40), decode_tokens=Fixed(5),
                  duration_s=0.6)
    reqs = list(wl.requests(1))
    res = serve(make_policy("sarathi", 32), reqs, runner)
    assert res.summary()["tokens_conserved"] and res.requests["completion_time"].notna().all()
    assert runner.cache.used_tokens == 0                       # every request's blocks came back
    # greedy outputs kept: the prefill's token, then one per decode step (the last is never fed)
    assert all(len(runner.outputs[r.request_id]) == r.decode_tokens + 1 for r in reqs)
    assert len(res.details) == len(res.iterations)
    assert (res.details["context_tokens"] > 0).all()
    write_run(res, tmp_path / "real", format="csv")
    write_run(simulate(make_policy("sarathi", 32), ConstantBatchTime(0.001), reqs), tmp_path / "sim", format="csv")
    for name in ("requests.csv", "iterations.csv"):
        head = [(tmp_path / d / name).read_text().splitlines()[0] for d in ("real", "sim")]
        assert head[0] == head[1]
    assert math.isclose(res.summary()["token_throughput"] * res.end_time, res.tokens_processed)
    assert np.all(np.diff(res.iterations["start_time"]) > 0)


def test_profiler_grid_covers_continued_prefill_chunks_and_small_decode_batches():
    pytest.importorskip("torch")
    from llmqueue.real.config import preset
    from llmqueue.real.model import build_model
    from llmqueue.real.profiling import Grid, build_profile, measure, spread_contexts
    from llmqueue.real.runner import ModelRunner
    grid = Grid(prefill=(0, 8), decode=(0, 2), context=(8, 24), prefill_context=(0, 12), repeats=1)
    cells = grid.cells()
    # the cached-prompt axis applies to prefill cells only; decode-only cells span every context
    assert (8, 0, 8, 12) in cells and (8, 2, 24, 12) in cells and (0, 2, 24, 0) in cells
    assert not any(p == 0 and c for p, _, _, c in cells)
    runner = ModelRunner(build_model(preset("tiny"), seed=0), num_blocks=64)
    raw = measure(runner, grid, warmup=1)
    assert len(raw) == len(cells) and runner.cache.used_tokens == 0     # every block came back
    for r in raw.itertuples():
        # the batch's context term counts the chunk's cached prompt as the simulator does
        want = (sum(spread_contexts(r.context_len, r.decode)) + r.decode if r.decode else 0) \
            + r.prefill_context + r.prefill
        assert r.context_tokens == want
    prof = build_profile(raw, name="t", model_desc={"name": "tiny"}, device_desc="cpu", threads=1, grid=grid)
    assert prof["grid"]["prefill_context"] == [0, 12]
    assert len(prof["measurements"][0]) == len(prof["measurement_columns"]) == 9
    with pytest.raises(ValueError, match="prefill_context"):
        Grid(prefill_context=(-1,))
