"""Writing a run with KV memory (``simulate(..., memory=...)``): ``write_run``'s files plus
preemptions.csv and memory.csv."""

from __future__ import annotations

from pathlib import Path


def write_memory_run(res, out, extra: dict | None = None) -> dict:
    """``write_run`` plus preemptions.csv and memory.csv (per-iteration memory) next to it."""
    from .output import write_run
    out = Path(out)
    summary = write_run(res, out, extra=extra)
    if res.memory is not None:
        res.preemptions.to_csv(out / "preemptions.csv", index=False)
        res.memory_iterations.to_csv(out / "memory.csv", index=False)
    return summary
