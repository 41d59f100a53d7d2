"""``llmqueue simulate``'s streamed path (``run_to_disk``): the same files and summary as the
in-memory run, without a Request object per request, in bounded memory.

The first two tests are the regression tests of issue 12, item 6 (they fail on the version that
built one Request per request and wrote its records with pandas): the CLI's simulate of a
generated workload builds no per-request objects, and the peak memory of a 2*10^5-request run
stays far below what holding every record and inter-token gap took. Neither times anything.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.engine import Request, paper_staircase
from llmqueue.policies import make_policy
from llmqueue.sim import simulate
from llmqueue.sim.fast.itl import repeated_sum
from llmqueue.sim.output import write_run
from llmqueue.sim.stream import run_to_disk, streams
from llmqueue.sim.tables import read_run_table, run_table_exists
from llmqueue.workload import LogNormal, PoissonArrivals, Workload


def test_cli_simulate_builds_no_request_per_request(tmp_path, monkeypatch):
    built = []
    real_init = Request.__post_init__

    def counting(self):
        built.append(1)
        real_init(self)

    monkeypatch.setattr(Request, "__post_init__", counting)
    r = CliRunner().invoke(app, ["simulate", "fig1", "--num-requests", "20000", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "summary.json").read_text())["completed"] == 20000
    assert len(built) < 100, f"{len(built)} Request objects built for 20000 requests"


def test_cli_simulate_peak_memory_stays_bounded(tmp_path, repo_root):
    """2*10^5 requests of the Fig. 1 mix at 0.95 lambda*: the whole process (interpreter and
    libraries included) stays under 450 MB; holding every record and gap took about 800 MB.

    The command runs as the only child of a small wrapper process that reports its children's
    peak: a process started straight from this (large) test process would report this one's
    peak, which Linux carries over into ru_maxrss across fork and exec."""
    cli = [sys.executable, "-m", "llmqueue", "simulate", "fig1", "--num-requests", "200000",
           "--request-rate", "13.17745", "--out", str(tmp_path)]
    code = ("import resource, subprocess, sys\n"
            f"r = subprocess.run({cli!r}, capture_output=True, text=True)\n"
            "sys.stderr.write(r.stderr)\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(r.returncode)\n")
    env = dict(os.environ, PYTHONPATH=str(repo_root / "src"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    peak_mb = int(out.stdout.split("PEAK")[-1]) / 1024
    assert json.loads((tmp_path / "summary.json").read_text())["completed"] == 200000
    assert peak_mb < 450, f"peak {peak_mb:.0f} MB"


def _workload(n: int, load: float, seed: int = 3):
    lam = 512 / paper_staircase().load_time(512) / (129 + 112)
    return Workload(PoissonArrivals(load * lam), LogNormal(129.0, 0.8, 1, 500), LogNormal(112.0, 0.8, 1, 900),
                    initial=((300, 5, "A"), (0, 7, "B"), (40, 0)), num_requests=n)


def _same(a, b) -> bool:
    return (a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("policy", ["sarathi", "vllm", "orca", "fastertransformer"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_streamed_files_and_summary_are_the_in_memory_ones(tmp_path, policy, fmt):
    pol, bt = make_policy(policy, 512, 64), paper_staircase()
    wl = _workload(3000, 1.05 if policy == "orca" else 0.9)
    for horizon in (None, 900.0):
        mem = simulate(pol, bt, wl.requests(7), horizon=horizon, engine="fast")
        a, b = tmp_path / f"mem{horizon}", tmp_path / f"disk{horizon}"
        want = write_run(mem, a, extra={"x": 1}, format=fmt)
        res = run_to_disk(pol, bt, wl.requests(7), b, horizon=horizon, format=fmt,
                          chunk_requests=97, epoch_iterations=61, trim_min=13)
        got = write_run(res, b, extra={"x": 1}, format=fmt)
        assert want.keys() == got.keys()
        assert all(_same(want[k], got[k]) for k in want), [k for k in want if not _same(want[k], got[k])]
        assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()
        for name in ("requests", "iterations"):
            if fmt == "csv":
                assert (a / f"{name}.csv").read_bytes() == (b / f"{name}.csv").read_bytes(), name
            pd.testing.assert_frame_equal(read_run_table(a, name), read_run_table(b, name), check_exact=True)
    # no files: the same summary
    assert _same(run_to_disk(pol, bt, wl.requests(7), None).summary()["mean_itl_ms"],
                 simulate(pol, bt, wl.requests(7), engine="fast").summary()["mean_itl_ms"])


def test_streamed_run_of_plain_requests_and_unsorted_ids(tmp_path):
    """A plain list of Requests (not a workload's stream) works too, and ids that do not
    increase are held to the end and still written in the in-memory table's order."""
    pol, bt = make_policy("sarathi", 256), paper_staircase()
    reqs = list(_workload(500, 0.9).requests(1))
    shuffled = [Request(int(i), r.arrival_time, r.prompt_tokens, r.decode_tokens)
                for i, r in zip(np.random.default_rng(0).permutation(len(reqs)), reqs)]
    for rs in (reqs, shuffled):
        mem = simulate(pol, bt, rs, engine="fast")
        run_to_disk(pol, bt, rs, tmp_path, chunk_requests=50, epoch_iterations=40, trim_min=5)
        pd.testing.assert_frame_equal(read_run_table(tmp_path, "requests"), mem.requests, check_exact=True)


def test_streams_says_when_the_path_applies():
    bt = paper_staircase()
    assert streams(make_policy("sarathi", 512), bt)
    assert not streams(make_policy("sarathi", 512), bt, record_composition=True)
    assert not streams(make_policy("sarathi", 512), bt, memory=object())
    assert not streams(make_policy("vllm-v1", 512), bt)


def test_cli_format_flag_and_composition(tmp_path):
    r = CliRunner().invoke(app, ["simulate", "fig1", "--num-requests", "300", "--out", str(tmp_path / "c"),
                                 "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c" / "requests.csv").is_file() and not run_table_exists(tmp_path / "c", "batches")
    r = CliRunner().invoke(app, ["simulate", "fig1", "--num-requests", "300", "--out", str(tmp_path / "p"),
                                 "--composition"])
    assert r.exit_code == 0, r.output
    for name in ("requests", "iterations", "batches"):
        assert (tmp_path / "p" / f"{name}.parquet").is_file(), name
    pd.testing.assert_frame_equal(read_run_table(tmp_path / "c", "requests"),
                                  read_run_table(tmp_path / "p", "requests"), check_exact=True)
    r = CliRunner().invoke(app, ["simulate", "fig1", "--num-requests", "30", "--format", "xlsx"])
    assert r.exit_code == 2 and "format must be one of parquet, csv" in r.output


def test_read_run_table_names_both_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no requests.parquet or requests.csv"):
        read_run_table(tmp_path, "requests")


def test_repeated_sum_is_numpys_sum_of_the_expanded_sample():
    rng = np.random.default_rng(4)
    for _ in range(40):
        k = int(rng.integers(1, 500))
        v = np.sort(rng.random(k) * 10.0 ** int(rng.integers(-3, 3)))
        c = rng.integers(1, int(rng.integers(2, 5000)), k)
        x = np.repeat(v, c)
        assert repeated_sum(v, c, leaf=1024) == np.sum(x)
        assert repeated_sum(v, c) / x.size == np.mean(x)
    assert repeated_sum(np.empty(0), np.empty(0, dtype=np.int64)) == 0.0
