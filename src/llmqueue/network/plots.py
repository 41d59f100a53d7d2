"""Matplotlib helpers for the network figures (Agg backend: files only, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..sim.manifest import atomic_path  # noqa: E402

COLORS = {"exit": "#d62728", "entry": "#2ca02c", "max-pressure": "#1f77b4", "max-pressure (jobs)": "#9467bd",
          "fluid": "black"}


def subplots(rows: int, cols: int, w: float = 6.0, h: float = 4.2):
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    return fig, axes


def save(fig, path: Path) -> str:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path.name
