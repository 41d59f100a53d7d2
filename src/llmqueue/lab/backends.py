"""Where sweep points run: in this process, on local worker processes, or on a Ray cluster.

Every backend has the same small interface: ``submit(key, args)`` queues ``run_point(*args)``
and ``next_done()`` blocks until some point has finished and returns ``(key, row)``. Points are
pure functions of their arguments, so which backend ran them, how many workers and in which
order never changes a row.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from ..errors import BackendError
from .point import run_point
from .workers import end_pool, guard_descendants, process_pool, stop_guard

BACKENDS = ("local", "serial", "ray")

RAY_MISSING = ("the ray backend needs Ray, which is an optional extra: install it with "
               "`pip install 'llmqueue[ray]'` (or `pip install ray`)")


class SerialBackend:
    """Runs points one at a time in this process (debugging, tests, workers=1)."""

    name = "serial"

    def __init__(self, fn: Callable[..., dict] = run_point) -> None:
        self.fn = fn
        self.queue: deque = deque()
        self.workers = 1

    def submit(self, key: Hashable, args: tuple) -> None:
        self.queue.append((key, args))

    def next_done(self) -> tuple[Hashable, dict]:
        key, args = self.queue.popleft()
        return key, self.fn(*args)

    @property
    def pending(self) -> int:
        return len(self.queue)

    def close(self) -> None:
        self.queue.clear()


def _ready() -> bool:
    return True


class LocalBackend:
    """A pool of worker processes on this machine.

    Workers are forked where the platform allows it (no re-import, and scripts need no
    ``if __name__ == "__main__"`` guard), else spawned. They are all started here, before any
    progress-bar thread exists, so a fork never copies a thread's held lock. They are
    :func:`~llmqueue.lab.workers.process_pool` workers: they ignore SIGINT, exit when the parent
    dies (SIGKILL included), and :meth:`close` ends them even mid-point.
    """

    name = "local"

    def __init__(self, workers: int | None = None, fn: Callable[..., dict] = run_point) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.fn = fn
        self.pool = process_pool(self.workers)
        self.pool.submit(_ready).result()
        self.futures: dict[Future, Hashable] = {}

    def submit(self, key: Hashable, args: tuple) -> None:
        self.futures[self.pool.submit(self.fn, *args)] = key

    def next_done(self) -> tuple[Hashable, dict]:
        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        fut = min(done, key=lambda f: str(self.futures[f]))  # deterministic pick among ties
        key = self.futures.pop(fut)
        return key, fut.result()

    @property
    def pending(self) -> int:
        return len(self.futures)

    def close(self) -> None:
        """Join the idle workers; with points still running (an interrupt, an error), end them now."""
        if self.futures:
            end_pool(self.pool)
            self.futures.clear()
        else:
            self.pool.shutdown(wait=True)


class RayBackend:
    """Ray tasks on the cluster at ``address``, or on a local Ray instance when it is None."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 fn: Callable[..., dict] = run_point) -> None:
        try:
            import ray
        except ImportError:
            raise BackendError(RAY_MISSING) from None
        self.ray = ray
        self._own = not ray.is_initialized()
        self._guard = None
        if self._own:
            # a local Ray's raylet and agents do not die with a SIGKILLed driver: a guard ends them
            self._guard = guard_descendants() if address is None else None
            kw: dict[str, Any] = {"address": address, "include_dashboard": False,
                                  "log_to_driver": False, "configure_logging": False}
            if address is None and workers:
                kw["num_cpus"] = workers
            try:
                ray.init(**kw)
            except Exception as e:  # ray raises ConnectionError, RuntimeError, ValueError ...
                stop_guard(self._guard)
                raise BackendError(f"could not start or reach Ray at {address or 'a local instance'}: {e}") from None
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self.remote = ray.remote(fn)
        self.refs: dict[Any, Hashable] = {}

    def submit(self, key: Hashable, args: tuple) -> None:
        self.refs[self.remote.remote(*args)] = key

    def next_done(self) -> tuple[Hashable, dict]:
        done, _ = self.ray.wait(list(self.refs), num_returns=1)
        ref = done[0]
        key = self.refs.pop(ref)
        return key, self.ray.get(ref)

    @property
    def pending(self) -> int:
        return len(self.refs)

    def close(self) -> None:
        """Cancel (force-kill) the tasks still running; shut down the Ray instance this backend started."""
        for ref in list(self.refs):
            self.ray.cancel(ref, force=True)
        self.refs.clear()
        if self._own:
            self.ray.shutdown()
            self._own = False
        stop_guard(self._guard)
        self._guard = None


def make_backend(name: str, workers: int | None = None, address: str | None = None):
    """A backend by name: local (default), serial, or ray."""
    if name == "serial" or (name == "local" and workers == 1):
        return SerialBackend()
    if name == "local":
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(address, workers)
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
