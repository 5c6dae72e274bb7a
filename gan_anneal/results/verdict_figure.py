"""The verdict as a picture: each column's difference from the baseline with its 95% interval, one panel a metric.

A forest plot (a row a divergence and column, 0 as a vertical line): what `ganneal table --against 0` prints, read
at a glance. A one-seed column's interval (from the row's run noise) is drawn dashed, and the published share,
where there is one, as a cross, so an interval that holds 0 and misses the cross reads as "rules the paper's effect
out".
"""

from __future__ import annotations

from pathlib import Path

from gan_anneal.figures import pyplot, save_figure  # matplotlib itself is imported when a figure is drawn
from gan_anneal.results.compare import Difference, Panels, baseline_label

PANELS_ACROSS = 3  # then the next row: four metrics in several settings stay a readable page, not a strip


def verdict_figure(panels: Panels, baseline: str, reference: str = ""):
    """A matplotlib figure of the panels `compare.verdict` gives (setting label, metric, differences)."""
    plt = pyplot()
    rows = max((len(found) for _, _, found in panels), default=1)
    across = min(len(panels), PANELS_ACROSS)
    down = -(-len(panels) // across)
    fig, axes = plt.subplots(down, across, figsize=(4.2 * across, (0.8 + 0.32 * rows) * down), dpi=100,
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (label, metric, found) in zip(axes.flat, panels):
        _panel(ax, found)
        ax.set_yticks(range(len(found)), [f"{d.divergence} {d.column}" for d in found], fontsize=8)
        ax.invert_yaxis()  # the first row on top, as the table prints it
        better = "higher" if metric.higher_is_better else "lower"
        setting = f" ({label})" if label else ""
        ax.set_title(f"{metric.title.split(' (')[0]} − {baseline_label(baseline)}{setting}, 95%\n{better} is better",
                     fontsize=9)
    if reference and any(d.share is not None for _, _, found in panels for d in found):
        axes[0][0].plot([], [], "x", color="tab:red", label=f"{reference} share")
        axes[0][0].legend(fontsize=7, loc="best")
    return fig


def _panel(ax, found: list[Difference]) -> None:
    ax.axvline(0.0, color="0.5", lw=0.8)
    for y, d in enumerate(found):
        if d.low is not None:
            ax.plot([d.low, d.high], [y, y], color="tab:blue", lw=1.6, ls="--" if d.noise_dof is not None else "-")
        ax.plot([d.difference], [y], "o", color="tab:blue", ms=4)
        if d.share is not None:
            ax.plot([d.share], [y], "x", color="tab:red", ms=6)


def write_verdict_figure(panels: Panels, baseline: str, path: str | Path, reference: str = "") -> Path:
    """Draw the verdict and write it to path (the format from its suffix)."""
    return save_figure(verdict_figure(panels, baseline, reference), path)
