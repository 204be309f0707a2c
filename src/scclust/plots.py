"""UMAP plots: one PNG per cluster column and per colour column, readable at any number of clusters.

Colours never repeat silently: up to 20 categories get tab20 and a legend; more get scanpy's 102-colour palette and
their names written on the data at each category's centre (median of all its cells). Cluster columns always carry
their labels on the data. At most ``MAX_POINTS`` cells (a seeded subsample) are drawn, so a PNG costs the same at
a million cells as at ten thousand.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io as _io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.patheffects as patheffects
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from scclust.hierarchy import label_key
from scclust.results import atomic_path

MAX_POINTS = 50_000
LEGEND_MAX = 20
DPI = 90


def safe_filename(name: str) -> str:
    """A file name for an untrusted obs column name: only letters, digits, '.', '_' and '-'.

    A name that had to be changed (or shortened) ends in a hash of the original, so that two columns such as
    ``a b`` and ``a/b`` never write the same file.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "column"
    if cleaned == name and len(name) <= 100:
        return name
    return f"{cleaned[:91]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def palette(n: int) -> list[str]:
    """``n`` colours: tab20 up to 20, scanpy's ``default_102`` beyond (cycled past 102, where labels tell them apart)."""
    if n <= LEGEND_MAX:
        return [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors[:n]]
    colours = default_102()
    return [colours[i % len(colours)] for i in range(n)]


@functools.cache
def default_102() -> list[str]:
    """Scanpy's ``default_102`` palette, read from its module file: ``import scanpy`` would cost REPORT ~2 s."""
    origin = importlib.util.find_spec("scanpy").origin  # finds the package without importing it
    spec = importlib.util.spec_from_file_location("scclust_scanpy_palettes", Path(origin).parent / "plotting" / "palettes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # it imports matplotlib only
    return list(module.default_102)


def category_order(text: pd.Series) -> list[str]:
    """Categories in reading order: numeric paths (``2_0`` before ``10_0``) for cluster labels, else alphabetical."""
    values = text.unique()
    if text.str.match(r"^\d+(_\d+)*$").all():
        return sorted(values, key=label_key)
    return sorted(values)


def subsample(n: int, max_points: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` cells, the same for every plot of a run (seeded)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as an optimised 256-colour PNG (about a third of matplotlib's RGBA size); closes the figure."""
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = _io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def save_png(fig: Figure, out: Path) -> None:
    """Write ``fig`` to ``out`` as :func:`png_bytes`, atomically."""
    tmp = atomic_path(out)
    tmp.write_bytes(png_bytes(fig))
    tmp.replace(out)


def draw_categories(ax: Axes, coords: np.ndarray, values: pd.Series, shown: np.ndarray, *, cluster: bool) -> None:
    """Scatter categories in distinct colours; a legend (<= 20 categories) and/or names at the category centres."""
    text = values.astype(str).where(values.notna(), "NA")
    categories = category_order(text)
    colours = palette(len(categories))
    codes = pd.Categorical(text, categories=categories).codes
    size = max(0.3, min(20.0, 20000 / max(len(shown), 1)))
    ax.scatter(coords[shown, 0], coords[shown, 1], s=size, c=np.asarray(colours)[codes[shown]], linewidths=0, rasterized=True)
    if len(categories) <= LEGEND_MAX:
        handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=k) for k, c in zip(categories, colours, strict=True)]
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False, markerscale=0.8)
    if cluster or len(categories) > LEGEND_MAX:
        frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "c": codes})
        centres = frame.groupby("c").median()
        outline = [patheffects.withStroke(linewidth=2, foreground="white")]
        for code, (x, y) in centres.iterrows():
            ax.text(x, y, categories[int(code)], fontsize=7, ha="center", va="center", weight="bold", path_effects=outline)


def plot_umap(coords: np.ndarray, values: pd.Series, title: str, out: Path, *, cluster: bool = False, seed: int = 0) -> Path:
    """Write one UMAP PNG coloured by ``values`` (categories, or a colour bar for numbers)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    shown = subsample(len(values), seed=seed)
    if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        points = ax.scatter(
            coords[shown, 0], coords[shown, 1], c=values.to_numpy(dtype=float)[shown], s=2, cmap="viridis", rasterized=True
        )
        fig.colorbar(points, ax=ax, shrink=0.7)
    else:
        draw_categories(ax, coords, values, shown, cluster=cluster)
    if len(shown) < len(values):
        title += f"\n({len(shown):,} of {len(values):,} cells drawn)"
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP1")
    ax.set_ylabel("UMAP2")
    save_png(fig, out)
    return out


def plot_all(
    coords: np.ndarray, obs: pd.DataFrame, clusters: list[str], colours: list[str], outdir: str | Path, seed: int = 0
) -> dict[str, Path]:
    """Write ``umap_<column>.png`` for each cluster column and each colour column; returns {column: path}."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for column in [*clusters, *colours]:
        if column not in paths:
            path = out / f"umap_{safe_filename(column)}.png"
            paths[column] = plot_umap(coords, obs[column], column, path, cluster=column in clusters, seed=seed)
    return paths
