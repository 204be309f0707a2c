"""MultiQC custom-content files, found by any MultiQC run over ``--outdir`` (names end in ``_mqc``).

``<id>_mqc.tsv`` is a table section (one row per dataset and cluster column, YAML config in ``#`` header lines);
``<id>_mqc.yaml`` adds one row per dataset to MultiQC's General Statistics. Rows of every dataset share the section
id ``scclust_metrics``, so MultiQC merges them into one table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scclust.plots import safe_filename
from scclust.results import atomic_path

HEADER = """# id: 'scclust_metrics'
# section_name: 'scclust: clustering metrics'
# description: 'One row per dataset and cluster column; details in each dataset''s report.html.'
# format: 'tsv'
# plot_type: 'table'
# pconfig:
#     id: 'scclust_metrics_table'
#     namespace: 'scclust'
#     col1_header: 'dataset / column'
"""


def _numeric(summary: dict[str, Any]) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    rows = []
    for name, metrics in summary["columns"].items():
        values = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        rows.append((f"{summary['id']} {name}", values))
    keys = sorted({k for _, values in rows for k in values}, key=lambda k: (k != "n_clusters", k))
    return keys, rows


def general_stats(summary: dict[str, Any]) -> dict[str, Any]:
    """The General Statistics entry of one dataset: cells, columns, and the recommended columns' clusters and stability."""
    data: dict[str, Any] = {"cells": summary["n_obs"], "cluster_columns": len(summary["columns"])}
    headers: list[dict[str, Any]] = [
        {"cells": {"title": "Cells", "description": "cells clustered", "format": "{:,.0f}", "scale": "Blues"}},
        {"cluster_columns": {"title": "Clusterings", "description": "cluster columns written", "format": "{:,.0f}"}},
    ]
    for algorithm, column in sorted(summary["recommended"].items()):
        metrics = summary["columns"][column]
        data[f"{algorithm}_n_clusters"] = metrics["n_clusters"]
        headers.append({f"{algorithm}_n_clusters": {"title": f"{algorithm} clusters", "description": f"clusters of {column}"}})
        if "stability" in metrics:
            data[f"{algorithm}_stability"] = metrics["stability"]
            headers.append({f"{algorithm}_stability": {"title": f"{algorithm} stability", "min": 0, "max": 1, "scale": "RdYlGn"}})
    return {
        "id": "scclust_general_stats",
        "plot_type": "generalstats",
        "pconfig": headers,
        "data": {summary["id"]: data},
    }


def write_multiqc(summary: dict[str, Any], outdir: str | Path) -> list[Path]:
    """Write ``<id>_mqc.tsv`` and ``<id>_mqc.yaml`` (the id made file-name safe) into ``outdir``."""
    stem = Path(outdir) / f"{safe_filename(summary['id'])}_mqc"
    keys, rows = _numeric(summary)
    lines = [HEADER + "\t".join(["dataset / column", *keys])]
    lines += ["\t".join([name, *(str(values.get(k, "")) for k in keys)]) for name, values in rows]
    paths = []
    for path, text in (
        (stem.with_name(stem.name + ".tsv"), "\n".join(lines) + "\n"),
        (stem.with_name(stem.name + ".yaml"), yaml.safe_dump(general_stats(summary), sort_keys=False)),
    ):
        tmp = atomic_path(path)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        paths.append(path)
    return paths
