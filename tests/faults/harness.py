"""Run the real command line as a subprocess, kill it at a seeded random point, and check what is left.

A command runs in its own session (process group = its pid), so everything it started is found
by its process group; /proc is read directly (no psutil). After each fault the invariants are:
no process of the group is left after a few seconds, and the output folder either has no
manifest or is a complete run whose files match it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from llmqueue.errors import RunFolderError
from llmqueue.sim.manifest import MANIFEST, verify

SRC = Path(__file__).resolve().parents[2] / "src"
SOAK = int(os.environ.get("LLMQUEUE_FAULT_SOAK", "0") or 0)
SEED = int(os.environ.get("LLMQUEUE_FAULT_SEED", "20261203"))
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "KILL": signal.SIGKILL}


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1"}


def group_pids(pgid: int) -> list[int]:
    """Live processes (not zombies) of process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def descendants(root: int) -> dict[int, str]:
    """Live descendants of ``root`` (any session) -> their command line."""
    parent, cmd = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            line = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z":
            parent[int(entry)], cmd[int(entry)] = int(fields[1]), line
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for c, pp in parent.items():
            if pp == p and c not in found:
                found[c] = cmd[c]
                frontier.append(c)
    return found


def alive(pids) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists() and "Z" != Path(f"/proc/{p}/stat").read_text(
        ).rsplit(")", 1)[-1].split()[0]]


def wait_group_gone(pgid: int, timeout: float = 8.0) -> list[int]:
    """Wait until no process of the group is left; returns those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = group_pids(pgid)
        if not left:
            return []
        time.sleep(0.1)
    return group_pids(pgid)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llmqueue", *map(str, args)], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmqueue", *map(str, args)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Fault:
    command: str
    signal: str
    delay_s: float
    returncode: int
    outcome: str          # interrupted | finished | killed | startup
    message: str
    left: list[int]
    folder: str           # no manifest | complete | INVALID: ...
    temporaries: list[str]  # half-written files left (only a SIGKILL may leave them)


def folder_state(out: Path | None) -> str:
    if out is None or not (out / MANIFEST).exists():
        return "no manifest"
    try:
        verify(out)
    except RunFolderError as e:
        return f"INVALID: {e}"
    return "complete"


def inject(command: str, args: list[str], cwd: Path, sig: str, delay: float, out: Path | None) -> Fault:
    """Start ``llmqueue args``, send ``sig`` after ``delay`` seconds, and collect the outcome."""
    proc = start(args, cwd)
    time.sleep(delay)
    signum = SIGNALS[sig]
    finished_first = proc.poll() is not None
    if not finished_first:
        os.kill(proc.pid, signum)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"{command} did not end within 60 s of {sig}") from None
    left = wait_group_gone(proc.pid)
    rc = proc.returncode
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    if finished_first or rc == 0:
        outcome = "finished"
    elif sig == "KILL":
        outcome = "killed"
    elif rc == 128 + signum:
        outcome = "interrupted"
    else:
        outcome = "startup"       # the signal came before the command installed its handlers
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    temps = sorted(p.name for p in out.rglob(".*.tmp.*")) if out is not None and out.is_dir() else []
    return Fault(command, sig, delay, rc, outcome, lines[-1] if lines else "", left, folder_state(out), temps)
