"""The report's Markers section: dot plots of each cluster's top markers, paged so that 100+ clusters stay legible.

A dot's size is the fraction of the cluster's cells expressing the gene, its colour the cluster's mean expression
scaled per gene to 0-1 (scanpy's ``standard_scale='var'``), as ``sc.pl.rank_genes_groups_dotplot`` draws them, from
MARKERS' own statistics (``markers.npz``): the report never reads the expression matrix.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scclust.hierarchy import label_key
from scclust.markers_io import uns_key
from scclust.plots import safe_filename, save_png

TOP_PER_CLUSTER = 3
CLUSTERS_PER_PAGE = 30


def top_markers(entry: dict[str, Any], n: int) -> dict[str, list[str]]:
    """Each group's top ``n`` genes (as var names) in rank order."""
    names = entry["names"]
    return {g: [str(x) for x in names[g][:n]] for g in names.dtype.names}


def top_marker_labels(entries: dict[str, Any], symbols: pd.Series, column: str, *, within: bool) -> dict[str, str]:
    """Cluster -> its top marker's shown name; with ``within``, the within-parent marker where the cluster split."""
    out: dict[str, str] = {}
    for key in [uns_key(column)] + ([uns_key(column, within=True)] if within else []):
        if key in entries:
            out |= {g: str(symbols.get(genes[0], genes[0])) for g, genes in top_markers(entries[key], 1).items()}
    return out


def plot_dotplot(
    entry: dict[str, Any], means: pd.DataFrame, symbols: pd.Series, groups: list[str], title: str, out: Path
) -> Path:
    """One page: ``groups`` (rows) against their top markers (columns, in group order, each gene once)."""
    tops = top_markers(entry, TOP_PER_CLUSTER)
    genes = list(dict.fromkeys(g for group in groups for g in tops[group]))
    pts = entry["pts"].loc[genes, groups].to_numpy().T
    mean = means.loc[genes, groups].to_numpy().T
    span = mean.max(axis=0) - mean.min(axis=0)
    colour = (mean - mean.min(axis=0)) / np.where(span > 0, span, 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.28 * len(genes) + 2.5), max(2.5, 0.28 * len(groups) + 1.8)))
    yy, xx = np.meshgrid(np.arange(len(groups)), np.arange(len(genes)), indexing="ij")
    points = ax.scatter(xx.ravel(), yy.ravel(), s=4 + 120 * pts.ravel(), c=colour.ravel(), cmap="Reds", vmin=0, vmax=1,
                        edgecolors="grey", linewidths=0.3)  # fmt: skip
    ax.set_xticks(range(len(genes)), [str(symbols.get(g, g)) for g in genes], rotation=90, fontsize=7)
    ax.set_yticks(range(len(groups)), groups, fontsize=7)
    ax.set_xlim(-0.7, len(genes) - 0.3)
    ax.set_ylim(len(groups) - 0.5, -0.5)
    ax.set_title(title, fontsize=9)
    fig.colorbar(points, ax=ax, shrink=0.6, pad=0.01, label="mean expression (scaled per gene)")
    for frac in (0.25, 0.5, 1.0):
        ax.scatter([], [], s=4 + 120 * frac, c="grey", label=f"{frac:.0%}")
    ax.legend(title="cells expressing", fontsize=6, title_fontsize=6, loc="upper left", bbox_to_anchor=(1.12, 1), frameon=False)
    save_png(fig, out)
    return out


def dotplot_pages(
    entries: dict[str, Any], means: dict[str, pd.DataFrame], symbols: pd.Series, key: str, title: str, plots: Path
) -> list[Path]:
    """Dot plots of one uns entry, ``CLUSTERS_PER_PAGE`` clusters per page."""
    entry = entries[key]
    groups = sorted(entry["names"].dtype.names, key=label_key)
    pages = [groups[i : i + CLUSTERS_PER_PAGE] for i in range(0, len(groups), CLUSTERS_PER_PAGE)]
    out = []
    for i, page in enumerate(pages, 1):
        suffix = f" (clusters {page[0]} to {page[-1]}, page {i} of {len(pages)})" if len(pages) > 1 else ""
        stem = safe_filename(f"markers_{key}_{i}")
        out.append(plot_dotplot(entry, means[key], symbols, page, title + suffix, plots / f"{stem}.png"))
    return out


def markers_section(
    entries: dict[str, Any] | None,
    means: dict[str, pd.DataFrame],
    symbols: pd.Series,
    shown: list[tuple[str, str, list[str]]],
    plots: Path,
    embed: Any,
) -> str:
    """HTML of the section; ``shown``: per algorithm the column shown, why, and its tree's deeper level columns."""
    if entries is None:
        return "<p>Not computed (--markers false).</p>"
    first = next(iter(entries.values()))["params"]
    parts = [
        f"<p>scanpy's t-test (Welch, Benjamini-Hochberg) of each cluster against all other cells, on "
        f"<code>{html.escape(str(first['matrix']))}</code> ({html.escape(str(first['normalised']))}); the top "
        f"{TOP_PER_CLUSTER} genes per cluster. Dot size: fraction of the cluster's cells expressing the gene; colour: "
        "mean expression scaled per gene. Levels below 1: each sub-cluster against its siblings (the other cells of "
        "its parent cluster). All genes: markers.tsv; in the store: uns['rank_genes_groups_&lt;column&gt;'].</p>"
    ]
    for column, why, deeper in shown:
        parts.append(f"<p><b>{html.escape(column)}</b>: {why}.</p>")
        for path in dotplot_pages(entries, means, symbols, uns_key(column), f"{column}: top markers", plots):
            parts.append(embed(path, f"dot plot of the top markers of {column}"))
        for level_column in deeper:
            key = uns_key(level_column, within=True)
            if key not in entries:
                parts.append(f"<p>{html.escape(level_column)}: no cluster split, so no within-parent markers.</p>")
                continue
            title = f"{level_column}: top markers within the parent cluster"
            for path in dotplot_pages(entries, means, symbols, key, title, plots):
                parts.append(embed(path, f"dot plot of the within-parent markers of {level_column}"))
    return "".join(parts)
