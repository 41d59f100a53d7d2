"""Run independent simulations on several processes (results come back in the order asked).

Each task is a module-level function and its arguments; the result must be picklable (plain
dicts and lists). Every run is seeded, so the results do not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_tasks(tasks: Sequence[tuple[Callable[..., Any], tuple]], workers: int | None = None) -> list[Any]:
    """``[fn(*args) for fn, args in tasks]``, on up to ``workers`` processes."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(tasks) <= 1:
        return [fn(*args) for fn, args in tasks]
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(fn, *args) for fn, args in tasks]
        return [f.result() for f in futures]
