"""Integrity of results (issue 16 point 2, issue 13 point 10): manifests, --force, refusals, identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.sim.manifest import MANIFEST, verify

SIM = ["simulate", "theorem2", "--duration", "60"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_manifest_lists_every_file_and_same_seed_gives_same_bytes(tmp_path):
    for d in ("a", "b"):
        r = invoke(*SIM, "--seed", "7", "--out", tmp_path / d)
        assert r.exit_code == 0, r.output
    m = verify(tmp_path / "a")
    assert m["command"] == "simulate" and m["seed"] == 7 and len(m["scenario_sha256"]) == 64
    assert set(m["files"]) == {"requests.parquet", "iterations.parquet", "summary.json"}
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in m["files"].values())
    assert (tmp_path / "a" / MANIFEST).read_bytes() == (tmp_path / "b" / MANIFEST).read_bytes()


def test_reproduce_twice_gives_the_same_bytes_in_every_file(tmp_path):
    """result.json, the figures and the manifest: no wall time or date in any of them."""
    for d in ("a", "b"):
        r = invoke("reproduce", "fig8", "--fast", "--out", tmp_path / d)
        assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert MANIFEST in names and "result.json" in names and any(n.endswith(".png") for n in names)
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n


def test_non_empty_out_is_refused_and_force_leaves_no_file_of_the_earlier_run(tmp_path):
    out = tmp_path / "run"
    assert invoke(*SIM, "--composition", "--format", "csv", "--out", out).exit_code == 0
    assert (out / "batches.csv").exists()
    r = invoke(*SIM, "--out", out)
    assert r.exit_code == 2 and "not empty" in r.output and "--force" in r.output
    r = invoke(*SIM, "--out", out, "--force")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "iterations.parquet", "requests.parquet",
                                                            "summary.json"])
    verify(out)


def test_unwritable_out_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    r = invoke(*SIM, "--out", tmp_path / "file" / "sub")
    assert r.exit_code == 2 and r.output.startswith("error: cannot write to the output folder")
    assert len(r.output.strip().splitlines()) == 1


def test_report_and_compare_read_only_through_the_manifest(tmp_path):
    out = tmp_path / "run"
    assert invoke(*SIM, "--out", out).exit_code == 0
    summary = out / "summary.json"
    summary.write_text(summary.read_text().replace('"completed"', '"completed" ', 1))
    for args in (["report", out], ["compare", out, out]):
        r = invoke(*args)
        assert r.exit_code == 2 and "summary.json does not match manifest.json" in r.output, r.output
    (out / MANIFEST).unlink()
    for args in (["report", out], ["compare", out, out]):
        r = invoke(*args)
        assert r.exit_code == 2 and "no manifest.json" in r.output, r.output


def test_sweep_refuses_a_folder_that_holds_something_else(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = invoke("sweep", "theorem2", "--rates", "1.3", "--horizon", "60", "--backend", "serial", "--quiet",
               "--out", tmp_path)
    assert r.exit_code == 2 and "holds no sweep" in r.output and (tmp_path / "notes.txt").exists()


def test_sigterm_of_simulate_is_one_line_exit_143_and_no_manifest(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2] / "src")}
    args = [*SIM[:2], "--duration", "20000", "--composition", "--out", str(out)]   # long: in memory, compositions
    p = subprocess.Popen([sys.executable, "-m", "llmqueue", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(2.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("interrupted by SIGTERM:") and "--force" in err
    assert not (out / MANIFEST).exists()
    assert not [f for f in out.iterdir() if f.name.startswith(".")] if out.exists() else True
