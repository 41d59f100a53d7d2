"""Run independent simulations on several processes (results come back in the order asked).

Each task is a module-level function and its arguments; the result must be picklable (plain
dicts and lists). Every run is seeded, so the results do not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_tasks(tasks: Sequence[tuple[Callable[..., Any], tuple]], workers: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[Any]:
    """``[fn(*args) for fn, args in tasks]``, on up to ``workers`` processes; ``progress(done,
    total)`` is called as tasks finish (in any order)."""
    workers = default_workers() if workers is None else workers
    n = len(tasks)
    if workers <= 1 or n <= 1:
        out = []
        for fn, args in tasks:
            out.append(fn(*args))
            if progress is not None:
                progress(len(out), n)
        return out
    with ProcessPoolExecutor(max_workers=min(workers, n)) as pool:
        futures = [pool.submit(fn, *args) for fn, args in tasks]
        if progress is not None:
            for k, _ in enumerate(as_completed(futures), 1):
                progress(k, n)
        return [f.result() for f in futures]
