"""Clustering tree (clustree, Zappia & Oshlack 2018): rows of clusters, joined by the cells they share.

Built with numpy and matplotlib rather than pyclustree (0.4.1, checked): pyclustree is GPL-3 while scclust is MIT;
it colours nodes only by level or by a per-cell value, while stability is per cluster and column; it keeps a boolean
mask of all cells per node (1M cells x 500 nodes = 500 MB) and draws at a fixed 300 dpi; and it reads a hierarchical
label such as ``3_0`` as the integer 30 (``int`` accepts underscores).

Here a node's colour is its cluster's stability when given, its size the cluster's cell count; an edge is drawn
where it carries at least ``MIN_IN_PROPORTION`` of the child's cells (clustree's ``prop_filter``), wider for more cells.
Children are placed under the weighted mean position of their parents, so a hierarchy draws as a tree without
crossings. Counting is O(cells) per pair of columns (``np.bincount``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import matplotlib.patheffects as patheffects
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection

from scclust.hierarchy import label_key
from scclust.plots import save_png

MIN_IN_PROPORTION = 0.1
LABELS_MAX = 40
GREY = "#bdbdbd"
OUTLINE = [patheffects.withStroke(linewidth=1.5, foreground="white")]  # readable on dark and light nodes


@dataclass
class Row:
    """One row of the tree: a cluster column, its name on the plot and its per-cluster stability (if measured)."""

    name: str
    labels: pd.Categorical
    stability: dict[str, float] | None = None
    markers: dict[str, str] | None = None  # cluster -> its top marker gene, written under the label


def overlap(a: pd.Categorical, b: pd.Categorical) -> np.ndarray:
    """Cells shared by every cluster of ``a`` (rows) and of ``b`` (columns), counted in one pass."""
    na, nb = len(a.categories), len(b.categories)
    return np.bincount(a.codes.astype(np.int64) * nb + b.codes, minlength=na * nb).reshape(na, nb)


def layout(rows: list[Row]) -> list[np.ndarray]:
    """The x position (0..1) of every cluster of every row; a row's order follows its parents' mean position."""
    first = [label_key(c) for c in rows[0].labels.categories]
    positions = [_spread(np.array(sorted(range(len(first)), key=first.__getitem__)))]
    for above, row in itertools.pairwise(rows):
        counts = overlap(above.labels, row.labels).astype(float)
        centre = (positions[-1] @ counts) / np.maximum(counts.sum(axis=0), 1)
        keys = [label_key(c) for c in row.labels.categories]
        positions.append(_spread(np.array(sorted(range(len(keys)), key=lambda i: (centre[i], keys[i])))))
    return positions


def _spread(order: np.ndarray) -> np.ndarray:
    x = np.empty(len(order))
    x[order] = (np.arange(len(order)) + 0.5) / len(order)
    return x


def plot_tree(rows: list[Row], title: str, out: Path) -> Path:
    """Draw the tree of ``rows`` (top to bottom) to a PNG."""
    positions = layout(rows)
    widest = max(len(r.labels.categories) for r in rows)
    fig, ax = plt.subplots(figsize=(float(np.clip(0.3 * widest + 2, 6, 24)), 0.9 * len(rows) + 1.4))
    sizes = [np.bincount(r.labels.codes, minlength=len(r.labels.categories)) for r in rows]
    biggest = max(int(s.max()) for s in sizes)
    segments, widths, alphas = [], [], []
    for i in range(len(rows) - 1):
        counts = overlap(rows[i].labels, rows[i + 1].labels)
        parent, child = np.nonzero(counts / np.maximum(sizes[i + 1], 1) >= MIN_IN_PROPORTION)
        for p, c in zip(parent, child, strict=True):
            segments.append([(positions[i][p], -i), (positions[i + 1][c], -i - 1)])
            widths.append(0.4 + 4 * counts[p, c] / biggest)
            alphas.append(0.25 + 0.75 * counts[p, c] / sizes[i + 1][c])
    colours = [(0.2, 0.2, 0.2, a) for a in alphas]
    ax.add_collection(LineCollection(segments, linewidths=widths, colors=colours, zorder=1))
    cmap, measured = plt.get_cmap("RdYlGn"), False
    for i, row in enumerate(rows):
        area = 25 + 500 * sizes[i] / biggest
        if row.stability is not None:
            measured = True
            colour = [cmap(row.stability[str(c)]) if str(c) in row.stability else GREY for c in row.labels.categories]
        else:
            colour = [GREY] * len(area)
        ax.scatter(positions[i], np.full(len(area), -i), s=area, c=colour, edgecolors="black", linewidths=0.5, zorder=2)
        if len(row.labels.categories) <= LABELS_MAX:
            for x, label in zip(positions[i], row.labels.categories, strict=True):
                ax.text(x, -i, str(label), fontsize=6, ha="center", va="center", zorder=3, path_effects=OUTLINE)
                if row.markers and str(label) in row.markers:
                    ax.text(x, -i - 0.22, row.markers[str(label)], fontsize=5, ha="center", va="top", zorder=3,
                            style="italic", path_effects=OUTLINE)  # fmt: skip
    if measured:
        mappable = plt.cm.ScalarMappable(norm=plt.Normalize(0, 1), cmap=cmap)
        fig.colorbar(mappable, ax=ax, shrink=0.8, pad=0.01, label="cluster stability (grey: not measured)")
    ax.set_yticks(-np.arange(len(rows)), [r.name for r in rows], fontsize=8)
    ax.set_xticks([])
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=10)
    save_png(fig, out)
    return out
