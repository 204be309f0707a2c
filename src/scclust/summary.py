"""The run's summary across datasets (``<outdir>/report.html``), from each dataset's ``summary.json``."""

from __future__ import annotations

import html
import urllib.parse
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from scclust.plots import png_bytes
from scclust.report_html import img, page, table
from scclust.results import atomic_path


def curves(summaries: list[dict[str, Any]], key: str) -> dict[str, tuple[list[float], list[float]]]:
    """``key`` against resolution at level 1, one curve per dataset and algorithm."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for summary in summaries:
        level1 = [m for m in summary["columns"].values() if int(m["level"]) == 1 and key in m]
        for algorithm in sorted({m["algorithm"] for m in level1}):
            points = sorted((float(m["resolution"]), float(m[key])) for m in level1 if m["algorithm"] == algorithm)
            out[f"{summary['id']} {algorithm}"] = ([p[0] for p in points], [p[1] for p in points])
    return out


def _chart(summaries: list[dict[str, Any]]) -> str:
    panels = [("n_clusters", "clusters")]
    if curves(summaries, "stability"):
        panels.append(("stability", "median cluster stability"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for name, (x, y) in curves(summaries, key).items():
            ax.plot(x, y, marker="o", label=name)
        ax.set_xlabel("resolution (level 1)")
        ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=7)
    return img(png_bytes(fig), "clusters per resolution of every dataset")


def build_summary(summaries: list[dict[str, Any]], out_html: str | Path) -> None:
    """Write the summary page: one row per dataset linking to its report, and clusters per resolution for all."""
    summaries = sorted(summaries, key=lambda s: s["id"])
    rows, links = [], []
    for s in summaries:
        chosen = []
        for column in s["recommended"].values():
            metrics = s["columns"][column]
            stability = f", stability {metrics['stability']:.2f}" if "stability" in metrics else ""
            chosen.append(f"{column} ({metrics['n_clusters']} clusters{stability})")
        rows.append((s["id"], s["n_obs"], len(s["columns"]), "; ".join(chosen) or "none (no bootstraps)", s["input"]))
        href = urllib.parse.quote(f"{s['id']}/report.html")
        links.append(f'<li><a href="{html.escape(href)}">{html.escape(s["id"])}</a>: report.html</li>')
    overview = table(["dataset", "cells", "cluster columns", "recommended", "input"], rows) + f"<ul>{''.join(links)}</ul>"
    sections = [("datasets", "Datasets", overview), ("resolutions", "Clusters per resolution", _chart(summaries))]
    out = Path(out_html)
    tmp = atomic_path(out)
    tmp.write_text(page(f"scclust: {len(summaries)} datasets", sections), encoding="utf-8")
    tmp.replace(out)
