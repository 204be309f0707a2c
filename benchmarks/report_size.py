#!/usr/bin/env python
"""Wall time and size of one dataset's report at N cells: report.html, plots/, peak memory.

Labels are synthetic (Gaussian blobs merged into 4..40 clusters for 10 "resolutions", each split in two at level 2),
the metrics follow metrics.json's format with made-up stabilities: this measures the report, not clustering.

    python benchmarks/report_size.py --cells 1000000 --out /tmp/report_1m
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd

from make_synthetic import make_embedding
from scclust.config import config_from_params
from scclust.report import ReportData, build_report
from scclust.results import ColumnResult

RESOLUTIONS = [0.1 * i for i in range(1, 11)]


def columns_and_metrics(blob: np.ndarray, n_blobs: int, seed: int) -> tuple[list[ColumnResult], dict]:
    rng = np.random.default_rng(seed)
    columns, metrics = [], {"format": "scclust-metrics/1", "columns": {}, "label_columns": ["cell_type"]}
    for i, r in enumerate(RESOLUTIONS):
        level1 = blob * (4 * (i + 1)) // n_blobs
        split = level1.astype(str).astype(object) + np.where(rng.random(len(blob)) < 0.5, "_0", "_1")
        for level, labels in ((1, level1.astype(str)), (2, split)):
            name = f"leiden_{r!r}_{level}"
            col = ColumnResult(name, pd.Categorical(labels), {"algorithm": "leiden", "level": level, "resolution": r})
            columns.append(col)
            m = {"algorithm": "leiden", "level": level, "resolution": r, "n_clusters": len(col.labels.categories)}
            if level == 1:
                m["cluster_stability"] = {str(c): float(rng.uniform(0.3, 1)) for c in col.labels.categories}
                m["stability"] = float(np.median(list(m["cluster_stability"].values())))
            metrics["columns"][name] = m
    names = [c.name for c in columns if c.params["level"] == 1]
    metrics["stability"] = {"bootstraps": 10, "subsample_fraction": 0.8, "seed": 0, "ari": {n: [0.9] * 10 for n in names}}
    metrics["recommended"] = {"leiden": names[4]}
    metrics["recommendation_rule"] = "synthetic"
    return columns, metrics


@click.command()
@click.option("--cells", default=1_000_000, show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False))
def main(cells: int, out: str) -> None:
    """Build one report of CELLS synthetic cells into OUT and print its size and time."""
    n_blobs = 40
    emb, blob = make_embedding(cells, 2, n_blobs, seed=0)
    columns, metrics = columns_and_metrics(blob, n_blobs, seed=0)
    cfg = config_from_params({"resolutions": ",".join(repr(r) for r in RESOLUTIONS), "hierarchy": 2})
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"type {b % 25}" for b in blob])})
    dataset = {"id": "synthetic", "input": "synthetic", "format": "zarr", "n_obs": cells, "graph": {"recomputed": False}}
    data = ReportData(dataset, cfg, {"cells": cells}, {}, columns, metrics, emb[:, :2], obs)
    start = time.perf_counter()
    build_report(data, out)
    seconds = time.perf_counter() - start
    html = Path(out) / "report.html"
    pngs = list((Path(out) / "plots").glob("*.png"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"cells={cells} columns={len(columns)} report_s={seconds:.1f} html_MB={html.stat().st_size / 1e6:.2f} "
        f"pngs={len(pngs)} png_MB={sum(p.stat().st_size for p in pngs) / 1e6:.2f} peak_rss_MB={peak:.0f}"
    )


if __name__ == "__main__":
    main()
