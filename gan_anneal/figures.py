"""Matplotlib without a display, and a figure written whole: the helpers every picture in ganneal shares."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    import matplotlib  # deferred: matplotlib is slow to import and only this path needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import and only this path needs it

    return plt


def save_figure(fig, path) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    pyplot().close(fig)
    return path
