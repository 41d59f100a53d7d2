"""llmqueue plan on a real local Ray cluster (`ray start --head`), compared with local processes."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmqueue.lab.plan import PlanSpec, parse_grid, plan_backend, run_plan

ray = pytest.importorskip("ray", reason="Ray is an optional extra (llmqueue[ray])")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path, monkeypatch):
    """A head node started with `ray start --head --block` in its own process group; stopped by
    ending that group (only the processes this test started)."""
    exe = Path(sys.executable).parent / "ray"
    if not exe.exists() and shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    port = _free_port()
    tmp = Path("/tmp") / f"rp{os.getpid()}"            # Ray's socket paths must stay short
    # a cluster on this machine only, without Ray's token authentication (client and head alike)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([str(exe if exe.exists() else "ray"), "start", "--head", "--block", f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={tmp}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.skip("ray start --head exited")
            r = subprocess.run([str(exe), "status", f"--address={address}"], capture_output=True, env=env)
            if r.returncode == 0:
                break
            time.sleep(2)
        else:
            pytest.skip("the Ray head did not come up within 120 s")
        yield address
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:                                # what is left of the group (Ray's own processes)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def test_plan_on_a_ray_cluster_equals_local(ray_cluster, tmp_path):
    spec = PlanSpec("fig1", slos={"p99_ttft_ms": 1000.0, "p99_tpot_ms": 160.0}, num_requests=300,
                    grid=parse_grid(["policy=sarathi,vllm", "token_budget=256,512"]), refine=2, refine_requests=1200)
    local = run_plan(spec, None, plan_backend("serial")).to_json()
    on_ray = run_plan(spec, tmp_path, plan_backend("ray", None, ray_cluster)).to_json()
    assert on_ray == local
    # resumed from the results file: nothing recomputed, same answer
    again = run_plan(spec, tmp_path, plan_backend("serial"))
    assert again.computed == 0 and again.to_json() == local
