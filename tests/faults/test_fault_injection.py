"""Fault injection: every long command killed at seeded random points with SIGINT, SIGTERM, SIGHUP
and SIGKILL, the real command line in a subprocess. After each fault: no process is left behind,
the output folder has no manifest or is complete and valid, and a resumed (sweep) or forced
rerun gives byte-identical files (the manifests, which list every file's SHA-256, are equal).

CI runs one fault per command and signal (a few seconds each); ``LLMQUEUE_FAULT_SOAK=N`` runs N.
The sweep's Ray back end is included, with a Ray worker killed mid-run, where Ray is installed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
import yaml

from llmqueue.sim.manifest import is_temporary

from .harness import SEED, SIGNALS, SOAK, Fault, alive, descendants, inject, run, start

REPEATS = max(1, SOAK)
SWEEP = ["sweep", "theorem2", "--rates", "0.5,0.9,1.3", "--seeds", "1-2", "--horizon", "1500",
         "--workers", "2", "--quiet"]
SIMULATE = ["simulate", "theorem2", "--duration", "30000"]
RESULTS: list[Fault] = []
TIMES: dict[str, float] = {}          # wall time of the clean runs: kill points are fractions of it


def kill_points(command: str, lo: float, hi: float) -> list[tuple[str, float]]:
    rng = random.Random(f"{SEED}-{command}")
    return [(sig, round(rng.uniform(lo, hi), 3)) for _ in range(REPEATS) for sig in SIGNALS]


def same_sweep(out: Path, ref: Path) -> None:
    """Byte-identical to the clean sweep: every file the manifest lists, but the journal, whose
    lines come in the order points finished (the same lines, sorted, are compared)."""
    a, b = (json.loads((d / "manifest.json").read_text()) for d in (out, ref))
    a["files"].pop("points.jsonl"), b["files"].pop("points.jsonl")
    assert a == b
    lines = [sorted((d / "points.jsonl").read_text().splitlines()) for d in (out, ref)]
    assert lines[0] == lines[1]


def check(f: Fault) -> None:
    RESULTS.append(f)
    assert not f.left, f"{f.command} {f.signal}: processes left behind: {f.left}"
    assert not f.folder.startswith("INVALID"), f
    if f.signal != "KILL" and f.outcome == "interrupted":
        assert f.message.startswith(f"interrupted by SIG{f.signal}:"), f
    assert f.outcome != "startup", f
    assert f.signal == "KILL" or not f.temporaries, f


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Uninterrupted runs: the reference bytes."""
    root = tmp_path_factory.mktemp("clean")
    for name, args in (("sweep", SWEEP), ("simulate", SIMULATE)):
        t0 = time.monotonic()
        r = run([*args, "--out", root / name], root)
        TIMES[name] = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
    return root


def test_sweep_faults_and_resume(clean, tmp_path):
    for i, (sig, delay) in enumerate(kill_points("sweep", 0.3 * TIMES["sweep"], 0.6 * TIMES["sweep"])):
        out = tmp_path / f"s{i}"
        check(inject("sweep", [*SWEEP, "--out", out], tmp_path, sig, delay, out))
        r = run([*SWEEP, "--out", out], tmp_path)          # resume
        assert r.returncode == 0, r.stderr
        same_sweep(out, clean / "sweep")


def test_simulate_faults_and_forced_rerun(clean, tmp_path):
    for i, (sig, delay) in enumerate(kill_points("simulate", 0.45 * TIMES["simulate"], 0.9 * TIMES["simulate"])):
        out = tmp_path / f"r{i}"
        check(inject("simulate", [*SIMULATE, "--out", out], tmp_path, sig, delay, out))
        left = out.is_dir() and any(not is_temporary(p) for p in out.iterdir())   # temporaries are dropped
        r = run([*SIMULATE, "--out", out], tmp_path)
        if left:
            assert r.returncode == 2 and "--force" in r.stderr      # never mixed with a new run
            r = run([*SIMULATE, "--out", out, "--force"], tmp_path)
        assert r.returncode == 0, r.stderr
        assert (out / "manifest.json").read_bytes() == (clean / "simulate" / "manifest.json").read_bytes(), sig


@pytest.mark.parametrize("command,args,window", [
    ("reproduce", ["reproduce", "theorem2", "--fast"], (0.3, 0.6)),       # figures take its last part
    ("serve-bench", ["serve-bench", "theorem2", "--engine", "sim", "--num-requests", "60000"], (0.4, 0.85)),
])
def test_other_long_commands(tmp_path, command, args, window):
    t0 = time.monotonic()
    assert run([*args, "--out", tmp_path / "clean"], tmp_path).returncode == 0
    wall = time.monotonic() - t0
    for i, (sig, delay) in enumerate(kill_points(command, window[0] * wall, window[1] * wall)):
        out = tmp_path / f"o{i}"
        check(inject(command, [*args, "--out", out], tmp_path, sig, delay, out))


PLAN = ["plan", "fig1", "--slo", "p99_ttft_ms=2000", "--grid", "policy=sarathi,orca", "--grid",
        "token_budget=256,512,768", "--requests", "1500", "--refine", "2", "--refine-requests", "6000",
        "--workers", "2", "--quiet"]


def test_plan_faults_and_resume(tmp_path):
    """Killed mid-plan with each signal, then run again: it resumes to the clean run's results."""
    t0 = time.monotonic()
    r = run([*PLAN, "--out", tmp_path / "clean"], tmp_path)
    assert r.returncode == 0, r.stderr
    wall = time.monotonic() - t0
    ref = (tmp_path / "clean" / "plan_results.json").read_bytes()
    for i, (sig, delay) in enumerate(kill_points("plan", 0.4 * wall, 0.8 * wall)):
        out = tmp_path / f"p{i}"
        check(inject("plan", [*PLAN, "--out", out], tmp_path, sig, delay, out))
        r = run([*PLAN, "--out", out], tmp_path)           # resume (or a folder it refuses: start afresh)
        if r.returncode == 2 and "--force" in r.stderr:
            r = run([*PLAN, "--out", out, "--force"], tmp_path)
        assert r.returncode == 0, r.stderr
        assert (out / "plan_results.json").read_bytes() == ref, sig
        assert (out / "manifest.json").is_file()


def test_profile_faults(tmp_path):
    pytest.importorskip("torch")
    args = ["profile", "--model", "tiny", "--name", "t", "--repeats", "3", "--prefill", "0,8,32,64",
            "--decode", "0,2,8,16", "--context", "8,32,64"]
    t0 = time.monotonic()
    assert run([*args, "--profiles-dir", tmp_path / "clean"], tmp_path).returncode == 0
    wall = time.monotonic() - t0
    for i, (sig, delay) in enumerate(kill_points("profile", 0.35 * wall, 0.65 * wall)):
        pdir = tmp_path / f"p{i}"
        f = inject("profile", [*args, "--profiles-dir", pdir], tmp_path, sig, delay, None)
        check(f)
        # a profile is whole (written atomically, possibly just before the kill) or absent
        for p in (pdir.iterdir() if pdir.exists() else []):
            assert p.name == "t.yaml" and "fits" in yaml.safe_load(p.read_text()), (f, p.name)


def test_sweep_ray_worker_killed_mid_run(clean, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    proc = start([*SWEEP[:-3], "--backend", "ray", "--workers", "2", "--quiet", "--out", out], tmp_path)
    killed = None
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        for pid, line in descendants(proc.pid).items():
            seen.add(pid)
            if "ray::run_point" in line:
                time.sleep(0.3)
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.1)
    while proc.poll() is None:
        seen |= set(descendants(proc.pid))
        time.sleep(0.5)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert killed is not None, "no Ray task was seen running"
    t = time.monotonic()
    while alive(seen) and time.monotonic() - t < 20:
        time.sleep(0.2)
    assert not alive(seen), [descendants(1).get(p) for p in alive(seen)]
    RESULTS.append(Fault("sweep --backend ray", "KILL worker", 0.0, 0, "task retried", "", [], "complete", []))
    same_sweep(out, clean / "sweep")


@pytest.mark.parametrize("sig", ["KILL"] + (["INT", "TERM", "HUP"] if SOAK else []))
def test_sweep_ray_driver_killed_leaves_no_process(tmp_path, sig):
    """The driver killed mid-run: its Ray instance (raylet, agents, workers) goes with it."""
    pytest.importorskip("ray")
    proc = start([*SWEEP[:-3], "--backend", "ray", "--workers", "2", "--quiet", "--out", tmp_path / "o"], tmp_path)
    seen: set[int] = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and proc.poll() is None:
        d = descendants(proc.pid)
        seen |= set(d)
        if any("ray::run_point" in line for line in d.values()):
            break
        time.sleep(0.2)
    time.sleep(0.5)
    seen |= set(descendants(proc.pid))
    os.kill(proc.pid, SIGNALS[sig])
    _, err = proc.communicate(timeout=120)
    t = time.monotonic()
    while alive(seen) and time.monotonic() - t < 10:
        time.sleep(0.2)
    left = alive(seen)
    RESULTS.append(Fault("sweep --backend ray", sig, round(time.monotonic() - t0, 3), proc.returncode,
                         "killed" if sig == "KILL" else "interrupted", err.strip().splitlines()[-1] if err.strip()
                         else "", left, "no manifest" if not (tmp_path / "o" / "manifest.json").exists()
                         else "complete", []))
    assert not left
    if sig != "KILL":
        assert proc.returncode == 128 + SIGNALS[sig] and f"interrupted by SIG{sig}" in err


def test_zz_table():  # runs last (file order)
    """Print command x signal x outcome (pytest -s shows it)."""
    rows: dict[tuple[str, str, str], int] = {}
    for f in RESULTS:
        rows[(f.command, f.signal, f"{f.outcome}, {f.folder}")] = rows.get((f.command, f.signal,
                                                                             f"{f.outcome}, {f.folder}"), 0) + 1
    print(f"\n{len(RESULTS)} injected faults")
    for (c, s, o), n in sorted(rows.items()):
        print(f"{c:22s} {s:12s} {o:40s} x{n}")
