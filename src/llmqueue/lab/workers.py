"""Worker processes that never outlive their parent, and the way to end them.

Every pool of worker processes the package starts (the sweep's local back end, the experiments'
parallel map) is a :func:`process_pool`. Its workers ignore SIGINT (the parent decides what an
interrupt means and ends them), take SIGTERM and SIGHUP as the default (they exit), and notice the
death of their parent, SIGKILL included: on Linux the kernel sends them SIGKILL when it dies
(``prctl(PR_SET_PDEATHSIG)``), and everywhere a watchdog thread exits the worker within
:data:`WATCH_INTERVAL_S` once its parent process id changes. :func:`end_pool` ends a pool's
workers now (terminate, then kill); :func:`end_children` ends whatever child processes are left.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: how often a worker checks that its parent is alive (seconds)
WATCH_INTERVAL_S = 0.5
PR_SET_PDEATHSIG = 1


def _set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(parent_pid: int, interval: float = WATCH_INTERVAL_S) -> None:
    """Exit this process when ``parent_pid`` is no longer its parent (the parent died)."""
    _set_pdeathsig()
    if os.getppid() != parent_pid:       # died before the death signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="llmqueue-parent-watchdog", daemon=True).start()


def worker_init(parent_pid: int) -> None:
    """Initializer of every worker process: signals as described above, and the parent watchdog."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    watch_parent(parent_pid)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes (forked where the platform allows it, else spawned) whose
    workers run :func:`worker_init`."""
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=worker_init,
                               initargs=(os.getpid(),))


def _stop(procs: list, timeout: float) -> None:
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)


def end_pool(pool: ProcessPoolExecutor, timeout: float = 3.0) -> None:
    """Cancel what is queued and end the pool's workers now, even mid-task."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    _stop(procs, timeout)
    pool.shutdown(wait=False, cancel_futures=True)


def child_pids(pid: int | None = None) -> list[int]:
    """Process ids whose parent is ``pid`` (default: this process), from /proc (empty without it)."""
    pid = os.getpid() if pid is None else pid
    return sorted(child for child, (parent, _) in _proc_table().items() if parent == pid)


def end_children(timeout: float = 3.0) -> list[int]:
    """End every child process of this one still running (SIGTERM, then SIGKILL after
    ``timeout``); returns their ids. The multiprocessing children are joined as well."""
    pids = child_pids()
    for p in mp.active_children():
        if p.pid is not None and p.pid not in pids:
            pids.append(p.pid)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p in child_pids() for p in pids):
        time.sleep(0.05)
    for pid in set(pids) & set(child_pids()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    mp.active_children()      # reap the multiprocessing ones
    return pids


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every live process, from /proc."""
    table = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read().decode("ascii", "replace")
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 19 and fields[0] != "Z":
                table[int(entry)] = (int(fields[1]), fields[19])
    return table


def _guard_loop(parent: int, interval: float) -> None:
    known: dict[int, str] = {}
    me = os.getpid()
    while True:
        table = _proc_table()
        if os.getppid() != parent:              # the parent is gone: end what it started
            for pid, start in known.items():
                if table.get(pid, (0, None))[1] == start:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            return
        below, frontier = set(), [parent]
        while frontier:
            p = frontier.pop()
            for c, (pp, _) in table.items():
                if pp == p and c not in below and c != me:
                    below.add(c)
                    frontier.append(c)
        known = {pid: start for pid, start in known.items() if table.get(pid, (0, None))[1] == start}
        known.update({pid: table[pid][1] for pid in below})
        time.sleep(interval)


def guard_descendants(interval: float = WATCH_INTERVAL_S) -> int | None:
    """Start a guard process that, once this process dies (SIGKILL included), kills every process
    that was ever its descendant and still runs (for back ends whose processes do not watch their
    parent, like a local Ray instance's raylet and agents). Returns its pid (None where /proc or
    fork is missing); end it with :func:`stop_guard` when the back end is closed."""
    if not os.path.isdir("/proc") or not hasattr(os, "fork"):
        return None
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:                                        # the guard: no Python-level state of the parent is used
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name in ("SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        _guard_loop(parent, interval)
    finally:
        os._exit(0)


def stop_guard(pid: int | None) -> None:
    """End a guard started by :func:`guard_descendants` (the back end closed normally)."""
    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)
