"""Shared figure conventions: one colour and name per policy, the Agg backend, labelled axes,
saving PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..sim.manifest import atomic_path  # noqa: E402

POLICY_COLORS = {"fastertransformer": "#d62728", "vllm": "#ff7f0e", "orca": "#1f77b4", "sarathi": "#2ca02c"}
POLICY_NAMES = {"fastertransformer": "FasterTransformer", "vllm": "vLLM", "orca": "Orca", "sarathi": "Sarathi-Serve"}
PAPER_ORDER = ("fastertransformer", "vllm", "orca", "sarathi")


def color(policy: str) -> str:
    return POLICY_COLORS.get(policy, "#7f7f7f")


def label(policy: str) -> str:
    return POLICY_NAMES.get(policy, policy)


def figure(nrows: int = 1, ncols: int = 1, w: float = 7.0, h: float = 4.2, **kw):
    return plt.subplots(nrows, ncols, figsize=(w * ncols if ncols > 1 else w, h * nrows if nrows > 1 else h),
                        squeeze=False, **kw)


def finish(ax, xlabel: str, ylabel: str, title: str, *, title_size: float | None = None,
           legend: dict | None = None, **grid) -> None:
    """Label an axis the figures' way: x and y labels, the title (``title_size``: its font size, else
    the default), a legend (``legend``: its options, font size 8 unless given) and a light grid
    (``grid``: further options of ``ax.grid``)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, **({} if title_size is None else {"fontsize": title_size}))
    ax.legend(**{"fontsize": 8, **(legend or {})})
    ax.grid(alpha=0.3, **grid)


def save(fig, path: Path) -> Path:
    """Save as PNG (fixed metadata so that the same figure gives the same bytes) and close."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path
