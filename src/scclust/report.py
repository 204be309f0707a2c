"""The per-dataset report: plots/*.png, one self-contained report.html, MultiQC files and a summary for the run.

Every image is a PNG written under ``plots/`` and embedded in the HTML as a base64 ``data:`` URL; styles are inline
and the page has no script, font or link to anything outside itself, so it opens from a laptop with no network.
The numbers come from ``metrics.json`` (see :mod:`scclust.metrics`); without it only cluster counts and sizes,
which need nothing but the labels, are shown.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scclust import io
from scclust.charts import contingency, plot_contingency, plot_stability
from scclust.clustering import column_name
from scclust.config import Config
from scclust.multiqc import write_multiqc
from scclust.neighbors import read_umap
from scclust.plots import plot_all, safe_filename
from scclust.report_html import img, metrics_table, page, table
from scclust.report_markers import markers_section, top_marker_labels
from scclust.results import ColumnResult, atomic_path
from scclust.stability import MET_RULE
from scclust.tree import Row, plot_tree


@dataclass
class ReportData:
    """What one dataset's report shows."""

    dataset: dict[str, Any]
    cfg: Config
    params: dict[str, Any]
    run_info: dict[str, Any]
    columns: list[ColumnResult]
    metrics: dict[str, Any] | None = None
    coords: np.ndarray | None = None
    obs: pd.DataFrame = field(default_factory=pd.DataFrame)
    earlier: list[str] = field(default_factory=list)  # obs columns of an earlier run of a result store fed back in
    markers: dict[str, Any] | None = None  # markers.npz's uns entries; None without --markers
    markers_means: dict[str, pd.DataFrame] = field(default_factory=dict)
    symbols: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))  # var name -> name shown

    @property
    def label_columns(self) -> list[str]:
        """The obs columns the clusterings are compared with (``--label_columns``)."""
        return list(self.cfg.label_columns)

    def column_metrics(self) -> dict[str, dict[str, Any]]:
        """Metrics per column: metrics.json's, or counts and sizes from the labels when it is absent."""
        if self.metrics is not None:
            return self.metrics["columns"]
        out = {}
        for col in self.columns:
            sizes = np.bincount(col.labels.codes, minlength=len(col.labels.categories))
            out[col.name] = {
                "algorithm": col.params["algorithm"],
                "level": col.params["level"],
                "resolution": col.params["resolution"],
                "n_clusters": len(sizes),
                "size_min": int(sizes.min()),
                "size_median": float(np.median(sizes)),
                "size_max": int(sizes.max()),
            }
        return out

    def shown_column(self, algorithm: str) -> tuple[str, str]:
        """The column the contingency heatmaps show for ``algorithm``, and why."""
        recommended = (self.metrics or {}).get("recommended", {})
        if algorithm in recommended:
            return recommended[algorithm], "the recommended column (" + html.escape(self.metrics["recommendation_rule"]) + ")"
        middle = sorted(self.cfg.resolutions)[(len(self.cfg.resolutions) - 1) // 2]
        return column_name(algorithm, middle, 1), (
            "no recommendation without --stability_bootstraps, so the middle resolution of level 1 is shown"
        )


def read_shown(input_path: str, cfg: Config, umap_path: str | None) -> tuple[pd.DataFrame, np.ndarray | None, list[str]]:
    """The obs columns the report colours by, the UMAP coordinates, and the earlier scclust columns of the input.

    A result store fed back in keeps its earlier columns, so its folder shows their plots too. Coordinates come from
    ``umap_path`` when this run computed them, else from the input's ``obsm/X_umap``, if any.
    """
    names = list(dict.fromkeys([*cfg.label_columns, *cfg.umap_colors]))
    with io.open_store(input_path) as root:
        in_obs = set(root["obs"].attrs.get("column-order", []))
        stored = (io.read_uns_entry(root, "scclust") or {}).get("columns", [])
        earlier = [c for c in stored if c in in_obs and c not in cfg.columns()]
        # --umap_colors may name a column this run creates: the report takes those from the results
        obs = io.read_obs_columns(root, input_path, [c for c in dict.fromkeys([*earlier, *names]) if c in in_obs])
        coords = read_umap(umap_path)[0] if umap_path else None
        if coords is None and "X_umap" in io.obsm_keys(root):
            coords = io.read_rep(root, "X_umap", input_path)
    return obs, coords, earlier


def build_report(data: ReportData, outdir: str | Path) -> dict[str, Any]:
    """Write ``plots/``, ``report.html`` and the MultiQC files into ``outdir``; return the run summary of this dataset."""
    out = Path(outdir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    metrics = data.column_metrics()
    by_name = {c.name: c for c in data.columns}
    sections = [("run", "Run", _run_section(data)), ("metrics", "Metrics", _metrics_section(data, metrics))]
    sections.append(("tree", "Clustering tree", _tree_section(data, by_name, plots)))
    sections.append(("stability", "Stability", _stability_section(data, metrics, plots)))
    sections.append(("umap", "UMAP", _umap_section(data, by_name, plots)))
    sections.append(("contingency", "Clusters against labels", _contingency_section(data, by_name, plots)))
    sections.append(("markers", "Markers", _markers_section(data, by_name, plots)))
    title = f"scclust report: {data.dataset['id']}"
    _write_text(out / "report.html", page(title, sections))
    summary = {
        "id": data.dataset["id"],
        "n_obs": data.dataset["n_obs"],
        "input": data.dataset["input"],
        "columns": {name: {k: v for k, v in m.items() if not isinstance(v, dict | list)} for name, m in metrics.items()},
        "recommended": (data.metrics or {}).get("recommended", {}),
    }
    write_multiqc(summary, out)
    return summary


def embed(path: Path, alt: str) -> str:
    """The PNG at ``path`` as an inline ``<img>``."""
    return img(path.read_bytes(), alt)


def _write_text(path: Path, text: str) -> None:
    tmp = atomic_path(path)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _run_section(data: ReportData) -> str:
    ds, info = data.dataset, data.run_info
    graph = ds["graph"]
    graph_text = (
        f"recomputed: {graph.get('n_neighbors')} neighbours on {graph.get('use_rep')}"
        if graph.get("recomputed")
        else f"input's obsp/{graph.get('connectivities_key')} (--neighbors_key {graph.get('neighbors_key')})"
    )
    facts = [
        ("dataset", ds["id"]),
        ("input", f"{ds['input']} ({ds['format']})"),
        ("cells", f"{ds['n_obs']:,}"),
        ("graph", graph_text),
        ("columns", f"{len(data.columns)} ({', '.join(data.cfg.algorithms)}; depth {data.cfg.depth})"),
        ("pipeline", f"{info.get('pipeline', 'scclust')} {info.get('version', '')}"),
        ("Nextflow", info.get("nextflow", "")),
        ("profile", info.get("profile", "")),
        # the time of the run that computed this report; a resumed run reuses it, as it reuses the results
        ("report written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("command line", info.get("command_line", "")),
    ]
    versions: dict[str, str] = {}
    for col in data.columns:
        versions.update({str(k): str(v) for k, v in col.params.get("versions", {}).items()})
    params = [(k, v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in sorted(data.params.items())]
    return (
        table(["", ""], facts, header=False)
        + f"<details><summary>Parameters ({len(params)})</summary>{table(['parameter', 'value'], params)}</details>"
        + f"<details><summary>Versions ({len(versions)})</summary>"
        + f"{table(['package', 'version'], sorted(versions.items()))}</details>"
        + backend_section(data.columns)
    )


def backend_section(columns: list[ColumnResult]) -> str:
    """Where each column of a ``--use_gpu`` run was clustered and why (``''`` when no column asked for the GPU).

    A column on the CPU says why: too few cells, no GPU, a clustering the GPU cannot reproduce (Louvain, which cuGraph
    does not seed), or a GPU result that was replaced (``fallback``). Sub-clustered levels list their sub-clusters'.
    """
    rows = []
    for col in columns:
        p = col.params
        if not p.get("requested_gpu"):
            continue
        parts = p.get("subclusters", {}).values()
        reasons = {p["backend_reason"]} if "backend_reason" in p else {e["backend_reason"] for e in parts}
        fallback = p.get("fallback", {})
        if isinstance(fallback, str):
            fallback = {"": fallback}
        fallbacks = "; ".join(f"{k}: {v}" if k else v for k, v in fallback.items())
        rows.append((col.name, p.get("backend", ""), "; ".join(sorted(reasons)), fallbacks))
    if not rows:
        return ""
    on_gpu = sum(row[1] == "gpu" for row in rows)
    return (
        f"<details open><summary>Backends (--use_gpu): {on_gpu} of {len(rows)} columns on the GPU</summary>"
        "<p>A GPU column is rapids-singlecell's Leiden (cuGraph), with the keywords in its params' gpu_call; its labels "
        "differ from the CPU's igraph Leiden at the same resolution and seed.</p>"
        f"{table(['column', 'backend', 'why', 'fallback'], rows)}</details>"
    )


def _metrics_section(data: ReportData, metrics: dict[str, dict[str, Any]]) -> str:
    recommended = set((data.metrics or {}).get("recommended", {}).values())
    note = ""
    if data.metrics is None:
        note = "<p>No metrics.json was given: only cluster counts and sizes (from the labels) are shown.</p>"
    elif recommended:
        basis = data.metrics.get("recommendation_basis", {})
        fallbacks = "".join(
            f"<p><b>{html.escape(a)}: no column met the rule's marks</b>; the one highlighted has the highest "
            "cell-weighted stability. Consider other resolutions or read the stability chart before choosing.</p>"
            for a, b in sorted(basis.items())
            if b != MET_RULE
        )
        uncertain = "".join(
            f"<p><b>{html.escape(a)}: the recommendation is uncertain</b>: {html.escape(c.removeprefix('uncertain: '))}.</p>"
            for a, c in sorted(data.metrics.get("recommendation_certainty", {}).items())
            if c.startswith("uncertain")
        )
        note = (
            f"<p>Highlighted: recommended columns. Rule: {html.escape(data.metrics['recommendation_rule'])}</p>"
            f"{fallbacks}{uncertain}"
        )
    else:
        note = "<p>No stability bootstraps ran (--stability_bootstraps 0), so no column is recommended.</p>"
    return note + metrics_table(metrics, recommended) + _undefined_note(metrics)


def _undefined_note(metrics: dict[str, dict[str, Any]]) -> str:
    """Which metrics were left out of which columns, and why (see :func:`scclust.metrics.agreement`)."""
    rows = [
        (column, key, reason) for column, entry in metrics.items() for key, reason in sorted(entry.get("undefined", {}).items())
    ]
    if not rows:
        return ""
    return (
        f"<details><summary>Left out as undefined ({len(rows)}; shown as empty cells above)</summary>"
        f"{table(['column', 'metric', 'why'], rows)}</details>"
    )


def _tree_section(data: ReportData, by_name: dict[str, ColumnResult], plots: Path) -> str:
    cfg, parts = data.cfg, []
    stability = {name: m["cluster_stability"] for name, m in data.column_metrics().items() if "cluster_stability" in m}
    for algorithm in cfg.algorithms:
        if len(cfg.resolutions) > 1:
            names = [column_name(algorithm, r, 1) for r in sorted(cfg.resolutions)]
            rows = [
                Row(f"resolution {by_name[n].params['resolution']:g}", by_name[n].labels, stability.get(n), _top(data, n, False))
                for n in names
            ]
            path = plot_tree(rows, f"{algorithm}: level 1 across resolutions", plots / f"tree_{algorithm}_resolutions.png")
            parts.append(embed(path, f"clustering tree of {algorithm} across resolutions"))
        for resolution in sorted(cfg.resolutions) if cfg.depth > 1 else []:
            names = [column_name(algorithm, resolution, level) for level in range(1, cfg.depth + 1)]
            rows = [
                Row(f"level {by_name[n].params['level']}", by_name[n].labels, stability.get(n), _top(data, n, True))
                for n in names
            ]
            stem = safe_filename(f"tree_{algorithm}_{resolution!r}_levels")
            path = plot_tree(rows, f"{algorithm} {resolution:g}: hierarchy levels", plots / f"{stem}.png")
            parts.append(embed(path, f"clustering tree of {algorithm} {resolution:g} across levels"))
    if not parts:
        return "<p>One resolution and one level: there is no tree to draw.</p>"
    legend = "Node size: cells; node colour: cluster stability (grey: not measured); edge: shared cells."
    if data.markers is not None:
        legend += " Under each label: the cluster's top marker gene (in a hierarchy, against its siblings where it split)."
    return f"<p>{legend}</p>" + "".join(parts)


def _top(data: ReportData, column: str, within: bool) -> dict[str, str] | None:
    if data.markers is None:
        return None
    return top_marker_labels(data.markers, data.symbols, column, within=within)


def _markers_section(data: ReportData, by_name: dict[str, ColumnResult], plots: Path) -> str:
    shown = []
    for algorithm in data.cfg.algorithms:
        column, why = data.shown_column(algorithm)
        params = by_name[column].params
        resolution = params.get("run_resolution", params["resolution"])
        deeper = [column_name(algorithm, resolution, level) for level in range(2, data.cfg.depth + 1)]
        shown.append((column, why, [c for c in deeper if c in by_name]))
    return markers_section(data.markers, data.markers_means, data.symbols, shown, plots, embed)


def _stability_section(data: ReportData, metrics: dict[str, dict[str, Any]], plots: Path) -> str:
    stability = (data.metrics or {}).get("stability")
    if not stability:
        return "<p>Not measured: run with --stability_bootstraps B (e.g. 10) to re-cluster subsamples of the cells.</p>"
    recommended = data.metrics.get("recommended", {})
    parts = [
        f"<p>Up to {stability['bootstraps']} bootstraps of {stability['subsample_fraction']:g} of the cells (seed "
        f"{stability['seed']}); a cluster's stability is its mean best Jaccard overlap with a bootstrap's clusters. "
        "The standard errors (jackknife over the bootstraps, widened for few bootstraps so that +- 1.96 errors is a "
        "95% interval) say how far another set of bootstraps could move each statistic.</p>"
    ]
    for algorithm in data.cfg.algorithms:
        names = [column_name(algorithm, r, 1) for r in sorted(data.cfg.resolutions)]
        path = plot_stability(
            names,
            sorted(data.cfg.resolutions),
            {n: metrics[n].get("cluster_stability", {}) for n in names},
            stability.get("ari", {}),
            {n: _median_and_error(metrics[n]) for n in names if "stability" in metrics[n]},
            recommended.get(algorithm),
            f"{algorithm}: stability per resolution",
            plots / f"stability_{algorithm}.png",
            seed=data.cfg.seed,
        )
        parts.append(embed(path, f"stability of {algorithm} clusters per resolution"))
    if len(stability.get("rounds", [])) > 1:
        rounds = ", ".join(map(str, stability.get("rounds", [])))
        names = [n for n in metrics if "n_bootstraps_reason" in metrics[n]]
        rows = [(n, metrics[n]["n_bootstraps"], metrics[n]["n_bootstraps_reason"]) for n in names]
        parts.append(
            f"<p>Adaptive bootstraps (--stability_adaptive): rounds up to {rounds} bootstraps; after each round only the "
            "columns that could still change the recommendation (a statistic whose 95% interval, +- 1.96 standard "
            "errors, reaches a mark of the rule) got more. Bootstrap b is the same in any round, so a column's "
            "bootstraps are the first ones of a fixed run.</p>" + table(["column", "bootstraps", "why"], rows)
        )
    return "".join(parts)


def _median_and_error(entry: dict[str, Any]) -> tuple[float, float | None, int]:
    return entry["stability"], entry.get("stability_se"), entry["n_bootstraps"]


def _umap_section(data: ReportData, by_name: dict[str, ColumnResult], plots: Path) -> str:
    if data.coords is None:
        return "<p>No UMAP: the input has no obsm/X_umap; add --recompute_umap to compute one.</p>"
    obs = data.obs.copy()
    for col in data.columns:
        obs[col.name] = col.labels
    colours = [c for c in [*data.label_columns, *data.cfg.umap_colors] if c in obs]
    clusters = [*data.earlier, *(c.name for c in data.columns)]
    paths = plot_all(data.coords, obs, clusters, colours, plots, seed=data.cfg.seed)
    cells = "".join(embed(p, f"UMAP coloured by {name}") for name, p in paths.items())
    return f'<div class="grid">{cells}</div>'


def _contingency_section(data: ReportData, by_name: dict[str, ColumnResult], plots: Path) -> str:
    labels = [c for c in data.label_columns if c in data.obs]
    if not labels:
        return "<p>No --label_columns given: nothing to compare the clusters with.</p>"
    parts = []
    for algorithm in data.cfg.algorithms:
        shown, why = data.shown_column(algorithm)
        parts.append(f"<p><b>{html.escape(shown)}</b>: {why}.</p>")
        clusters = pd.Series(np.asarray(by_name[shown].labels), index=data.obs.index)
        for label in labels:
            counts = contingency(clusters, data.obs[label])
            stem = safe_filename(f"contingency_{shown}_{label}")
            path = plot_contingency(counts, shown, label, plots / f"{stem}.png")
            parts.append(embed(path, f"{shown} against {label}"))
    return "".join(parts)
