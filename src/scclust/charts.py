"""Report charts besides UMAPs and the tree: cluster stability per resolution and a contingency heatmap."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scclust.plots import category_order, save_png
from scclust.stability import DISSOLVED, STABLE

HEATMAP_MAX = 60


def plot_stability(
    columns: list[str],
    resolutions: list[float],
    cluster_stability: dict[str, dict[str, float]],
    bootstrap_ari: dict[str, list[float]],
    medians: dict[str, tuple[float, float | None, int]],
    recommended: str | None,
    title: str,
    out: Path,
    seed: int = 0,
) -> Path:
    """Box and strip plot of the cluster stabilities of each column (one per resolution); ARI per bootstrap below.

    ``medians`` maps a column to its median cluster stability, that median's standard error (None if undefined)
    and its number of bootstraps: drawn as a diamond with an error bar of two standard errors (the rule's
    statistic and how sure it is), and the count under the resolution.
    """
    panels = 2 if any(bootstrap_ari.get(c) for c in columns) else 1
    fig, axes = plt.subplots(panels, 1, figsize=(max(5.0, 0.7 * len(columns) + 2), 3.2 * panels), squeeze=False)
    rng = np.random.default_rng(seed)
    ticks = [
        f"{r:g}" + (f"\nB={medians[c][2]}" if c in medians else "") + ("\n(recommended)" if c == recommended else "")
        for c, r in zip(columns, resolutions, strict=True)
    ]
    series = [("cluster stability", [list(cluster_stability.get(c, {}).values()) for c in columns])]
    if panels == 2:
        series.append(("ARI of each bootstrap\nto the full clustering", [bootstrap_ari.get(c, []) for c in columns]))
    for ax, (label, data) in zip(axes[:, 0], series, strict=True):
        x = np.arange(len(columns))
        ax.boxplot([d if d else [np.nan] for d in data], positions=x, widths=0.5, showfliers=False)
        for i, values in enumerate(data):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, alpha=0.6, color="#3182bd", zorder=3)
        if ax is axes[0, 0]:
            for i, column in enumerate(columns):
                if column in medians:
                    median, se, _ = medians[column]
                    error = None if se is None else 2 * se
                    ax.errorbar(i, median, yerr=error, fmt="D", color="#e6550d", markersize=5, capsize=3, zorder=4)
        for level, colour in ((STABLE, "#31a354"), (DISSOLVED, "#de2d26")):
            ax.axhline(level, color=colour, linestyle="--", linewidth=0.8)
        if recommended in columns:
            ax.axvspan(columns.index(recommended) - 0.4, columns.index(recommended) + 0.4, color="#fff7bc", zorder=0)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(label, fontsize=8)
        ax.set_xticks(x, ticks, fontsize=8)
    axes[-1, 0].set_xlabel(
        "resolution, bootstraps B (dashed: 0.75 stable, 0.5 dissolved; diamond: median, bar: 2 standard errors)", fontsize=8
    )
    axes[0, 0].set_title(title, fontsize=10)
    save_png(fig, out)
    return out


def contingency(clusters: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Cells per (cluster, label) as a table; clusters and labels in reading order, missing labels as ``NA``."""
    text = labels.astype(str).where(labels.notna(), "NA")
    table = pd.crosstab(clusters.astype(str).to_numpy(), text.to_numpy())
    rows = category_order(pd.Series(table.index))
    return table.loc[rows, category_order(pd.Series(table.columns))]


def plot_contingency(table: pd.DataFrame, row_name: str, column_name: str, out: Path) -> Path:
    """Heatmap of each cluster's fraction of cells per label (rows sum to 1), the largest labels first when many."""
    if table.shape[1] > HEATMAP_MAX:
        keep = table.sum().sort_values(ascending=False).index[: HEATMAP_MAX - 1]
        other = table.drop(columns=keep).sum(axis=1)
        table = table[keep].assign(**{f"other ({table.shape[1] - len(keep)})": other})
    fractions = table.div(table.sum(axis=1).clip(lower=1), axis=0)
    fig, ax = plt.subplots(figsize=(min(3 + 0.3 * table.shape[1], 24), min(2 + 0.22 * table.shape[0], 30)))
    image = ax.imshow(fractions.to_numpy(), aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=90, fontsize=7)
    ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index], fontsize=7)
    if table.size <= 400:
        for (i, j), n in np.ndenumerate(table.to_numpy()):
            if n:
                colour = "white" if fractions.iat[i, j] > 0.6 else "black"
                ax.text(j, i, str(n), ha="center", va="center", fontsize=5, color=colour)
    ax.set_xlabel(column_name, fontsize=8)
    ax.set_ylabel(f"{row_name} cluster", fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.6, label="fraction of the cluster's cells")
    save_png(fig, out)
    return out
