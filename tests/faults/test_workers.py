"""Worker processes notice their parent's death, SIGKILL included, without the Linux death signal too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmqueue.lab.workers import child_pids

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize("pdeathsig", [True, False])
def test_workers_exit_when_their_parent_is_killed(pdeathsig):
    code = textwrap.dedent(f"""
        import os, time
        from llmqueue.lab import workers
        if not {pdeathsig}:
            workers._set_pdeathsig = lambda sig=None: False      # the portable watchdog alone
        pool = workers.process_pool(2)
        futs = [pool.submit(time.sleep, 60) for _ in range(2)]
        time.sleep(1.0)
        print(" ".join(map(str, workers.child_pids())), flush=True)
        os.kill(os.getpid(), 9)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    assert p.returncode == -9, p.stderr
    pids = [int(x) for x in p.stdout.split()]
    assert len(pids) >= 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{q}").exists() for q in pids):
        time.sleep(0.1)
    assert not [q for q in pids if Path(f"/proc/{q}").exists()
                and Path(f"/proc/{q}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]


def test_child_pids_sees_a_child():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert p.pid in child_pids()
    finally:
        p.kill()
        p.wait()
