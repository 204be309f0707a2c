"""UMAP plots: one PNG per cluster column and per colour column."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scclust.hierarchy import sorted_categories


def safe_filename(name: str) -> str:
    """A file name for an untrusted obs column name: only letters, digits, '.', '_' and '-'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "column"
    return cleaned[:100]


def plot_umap(coords: np.ndarray, values: pd.Series, title: str, out: Path) -> None:
    """Scatter the UMAP coloured by one column (categorical legend, or a colour bar for numbers)."""
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    size = max(0.5, min(20.0, 20000 / max(len(values), 1)))
    if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        points = ax.scatter(coords[:, 0], coords[:, 1], c=values.to_numpy(dtype=float), s=size, cmap="viridis")
        fig.colorbar(points, ax=ax)
    else:
        text = values.astype(str).fillna("NA")
        categories = sorted_categories(text.unique()) if text.str.match(r"^\d+(_\d+)*$").all() else sorted(text.unique())
        cmap = plt.get_cmap("tab20", max(len(categories), 1))
        for i, cat in enumerate(categories):
            mask = (text == cat).to_numpy()
            ax.scatter(coords[mask, 0], coords[mask, 1], s=size, color=cmap(i), label=cat)
        if len(categories) <= 40:
            ax.legend(
                markerscale=max(1.0, 6 / size),
                fontsize=6,
                loc="center left",
                bbox_to_anchor=(1, 0.5),
                frameon=False,
            )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP1")
    ax.set_ylabel("UMAP2")
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def plot_all(coords: np.ndarray, obs: pd.DataFrame, columns: list[str], outdir: str | Path) -> list[Path]:
    """Write ``umap_<column>.png`` for each listed obs column."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for column in columns:
        path = out / f"umap_{safe_filename(column)}.png"
        plot_umap(coords, obs[column], column, path)
        paths.append(path)
    return paths
