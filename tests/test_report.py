"""Report builder: sections, self-containment, MultiQC files, the tree and the UMAP legend/label rules."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import yaml
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from scclust.charts import contingency
from scclust.clustering import column_name
from scclust.config import config_from_params
from scclust.plots import LEGEND_MAX, draw_categories, palette, safe_filename, subsample
from scclust.report import ReportData, build_report, read_shown
from scclust.results import ColumnResult
from scclust.summary import build_summary
from scclust.tree import Row, layout, overlap

SECTIONS = ("run", "metrics", "tree", "stability", "umap", "contingency")


def hierarchy_columns(adata, resolutions, depth):
    """Level 1 by scanpy's Leiden; level 2 splits every cluster of 30+ cells in two by its first PC (a stand-in)."""
    columns = []
    for r in resolutions:
        sc.tl.leiden(adata, resolution=r, flavor="igraph", n_iterations=2, random_state=0, key_added="l")
        parent = adata.obs["l"].astype(str).to_numpy()
        columns.append(
            ColumnResult(
                column_name("leiden", r, 1), pd.Categorical(parent), {"algorithm": "leiden", "level": 1, "resolution": r}
            )
        )
        for level in range(2, depth + 1):
            child = parent.copy()
            for label in np.unique(parent):
                cells = parent == label
                if cells.sum() >= 30:
                    upper = adata.obsm["X_pca"][cells, 0] > np.median(adata.obsm["X_pca"][cells, 0])
                    child[cells] = np.where(upper, f"{label}_1", f"{label}_0")
            params = {"algorithm": "leiden", "level": level, "resolution": r, "parent_column": columns[-1].name}
            columns.append(ColumnResult(column_name("leiden", r, level), pd.Categorical(child), params))
            parent = child
    return columns


def contract_metrics(columns, obs, label_columns, bootstraps, seed=0):
    """A metrics.json as the contract of issue 10 defines it (numbers made up where the real ones need a graph)."""
    rng = np.random.default_rng(seed)
    out = {"format": "scclust-metrics/1", "columns": {}, "label_columns": label_columns}
    for col in columns:
        sizes = pd.Series(col.labels).value_counts()
        m = {
            "column": col.name,
            "algorithm": col.params["algorithm"],
            "level": col.params["level"],
            "resolution": col.params["resolution"],
            "run_resolution": col.params["resolution"],
            "n_clusters": len(sizes),
            "size_min": int(sizes.min()),
            "size_median": float(sizes.median()),
            "size_max": int(sizes.max()),
            "n_small_clusters": int((sizes < 30).sum()),
            "modularity": float(rng.uniform(0.5, 0.9)),
            "modularity_at_resolution": float(rng.uniform(0.5, 0.9)),
            "silhouette": float(rng.uniform(0, 0.3)),
            "silhouette_n_cells": len(col.labels),
            "silhouette_rep": "X_pca",
            "cluster_sizes": {str(k): int(v) for k, v in sizes.items()},
        }
        for label in label_columns:
            m[f"ari_{label}"] = adjusted_rand_score(obs[label], col.labels)
            m[f"nmi_{label}"] = normalized_mutual_info_score(obs[label], col.labels)
        if bootstraps and col.params["level"] == 1:
            stability = {str(k): float(rng.uniform(0.3, 1.0)) for k in col.labels.categories}
            m |= {
                "cluster_stability": stability,
                "stability": float(np.median(list(stability.values()))),
                "stability_weighted": float(np.mean(list(stability.values()))),
                "ari_bootstrap_median": float(rng.uniform(0.5, 1)),
                "n_unstable_clusters": sum(v < 0.5 for v in stability.values()),
                "n_stable_clusters": sum(v >= 0.75 for v in stability.values()),
                "stability_se": float(rng.uniform(0, 0.05)),
                "n_bootstraps": bootstraps,
            }
        out["columns"][col.name] = m
    if bootstraps:
        level1 = [c.name for c in columns if c.params["level"] == 1]
        out["stability"] = {
            "bootstraps": bootstraps,
            "subsample_fraction": 0.8,
            "seed": seed,
            "ari": {c: rng.uniform(0.5, 1, bootstraps).tolist() for c in level1},
        }
        out["recommended"] = {"leiden": level1[-1]}
        out["recommendation_rule"] = "the highest resolution whose clusters are mostly stable (made up for this test)"
        out["recommendation_basis"] = {"leiden": "fallback: made up for this test"}
    return out


@pytest.fixture(scope="module")
def pbmc():
    adata = sc.datasets.pbmc68k_reduced()
    adata.obs["batch"] = pd.Categorical(np.where(np.random.default_rng(0).random(adata.n_obs) < 0.5, "a", "b"))
    return adata


def report_data(adata, *, bootstraps, metrics=True, umap=True, labels=True):
    resolutions = [0.3, 0.8]
    params = {"resolutions": "0.3,0.8", "hierarchy": 2, "umap_colors": "batch"}
    if labels:
        params["label_columns"] = "bulk_labels,batch"
    if bootstraps:
        params["stability_bootstraps"] = bootstraps
    cfg = config_from_params(params)
    columns = hierarchy_columns(adata, resolutions, depth=2)
    obs = adata.obs[["bulk_labels", "batch"]]
    dataset = {
        "id": "pbmc <test> & 'quotes'",
        "input": "/data/pbmc.h5ad",
        "format": "h5ad",
        "n_obs": adata.n_obs,
        "graph": {"neighbors_key": "neighbors", "connectivities_key": "connectivities", "recomputed": False},
    }
    return ReportData(
        dataset=dataset,
        cfg=cfg,
        params={"input": "/data/pbmc.h5ad", "resolutions": "0.3,0.8", "hierarchy": 2, "seed": 0},
        run_info={"pipeline": "scclust", "version": "0.1.0", "nextflow": "25.04.4", "command_line": "nextflow run main.nf"},
        columns=columns,
        metrics=contract_metrics(columns, obs, cfg.label_columns, bootstraps) if metrics else None,
        coords=adata.obsm["X_umap"] if umap else None,
        obs=obs,
    )


@pytest.fixture(scope="module")
def built(pbmc, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    data = report_data(pbmc, bootstraps=5)
    return data, build_report(data, out), out


def test_report_has_every_section_and_is_self_contained(built):
    data, _, out = built
    text = (out / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text, section
    # every image inline, and nothing fetched from anywhere: no src/href other than data: URLs and #anchors
    targets = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text, flags=re.IGNORECASE)
    assert targets and all(t.startswith(("data:image/png;base64,", "#")) for t in targets), set(targets) - {""}
    assert not re.search(r"https?://|<script|<link|@import|url\(", text, flags=re.IGNORECASE)
    images = re.findall(r'<img src="data:image/png;base64,', text)
    assert len(images) == len(list((out / "plots").glob("*.png")))
    # the id is escaped, every parameter and column is listed, the recommended column is highlighted
    assert "pbmc &lt;test&gt; &amp; &#x27;quotes&#x27;" in text and "<test>" not in text
    for key in data.params:
        assert f'<td class="code">{key}</td>' in text
    for col in data.columns:
        assert f">{col.name}</td>" in text
    assert re.search(r'<tr class="recommended"><td class="code">leiden_0.8_1</td>', text)
    assert "made up for this test" in text
    assert "leiden: no column met the rule" in text


def test_plots_written_for_every_column_tree_stability_and_contingency(built):
    data, _, out = built
    names = {p.name for p in (out / "plots").glob("*.png")}
    for col in data.columns:
        assert f"umap_{col.name}.png" in names
    assert {"umap_bulk_labels.png", "umap_batch.png", "tree_leiden_resolutions.png", "stability_leiden.png"} <= names
    assert {"tree_leiden_0.3_levels.png", "tree_leiden_0.8_levels.png"} <= names
    assert {"contingency_leiden_0.8_1_bulk_labels.png", "contingency_leiden_0.8_1_batch.png"} <= names


def test_multiqc_files(built):
    data, summary, out = built
    stem = f"pbmc_test_quotes-{hashlib.sha1(data.dataset['id'].encode()).hexdigest()[:8]}_mqc"
    tsv = (out / f"{stem}.tsv").read_text().splitlines()
    # as MultiQC's custom content reads it: '#' stripped from each header line, the rest parsed as YAML
    config = yaml.safe_load("\n".join(line[1:] for line in tsv if line.startswith("#")))
    assert config["id"] == "scclust_metrics" and config["plot_type"] == "table"
    table = pd.read_csv(out / f"{stem}.tsv", sep="\t", comment="#", index_col=0)
    assert list(table.index) == [f"{data.dataset['id']} {c.name}" for c in data.columns]
    assert table.columns[0] == "n_clusters"
    assert table.loc[f"{data.dataset['id']} leiden_0.3_1", "n_clusters"] == data.columns[0].labels.categories.size
    stats = yaml.safe_load((out / f"{stem}.yaml").read_text())
    assert stats["plot_type"] == "generalstats" and all(len(h) == 1 for h in stats["pconfig"])
    row = stats["data"][data.dataset["id"]]
    assert row["cells"] == data.dataset["n_obs"] and row["leiden_n_clusters"] == summary["columns"]["leiden_0.8_1"]["n_clusters"]


def test_file_names_of_untrusted_names_never_collide():
    names = ["a b", "a/b", "a_b", "a__b", "x" * 100, "x" * 101, "x" * 100 + "y", "..", ""]
    files = [safe_filename(n) for n in names]
    assert len(set(files)) == len(files), files
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,100}", f) and not f.startswith(".") for f in files), files
    assert safe_filename("leiden_0.5_1") == "leiden_0.5_1"


def test_without_bootstraps_or_metrics_the_report_says_so(pbmc, tmp_path):
    data = report_data(pbmc, bootstraps=0)
    build_report(data, tmp_path / "a")
    text = (tmp_path / "a" / "report.html").read_text()
    assert "no column is recommended" in text
    assert "leiden_0.3_1</b>: no recommendation without --stability_bootstraps" in text
    assert not list((tmp_path / "a" / "plots").glob("stability_*"))
    data = report_data(pbmc, bootstraps=0, metrics=False, umap=False, labels=False)
    summary = build_report(data, tmp_path / "b")
    text = (tmp_path / "b" / "report.html").read_text()
    assert "No metrics.json was given" in text and "No UMAP" in text and "No --label_columns" in text
    assert summary["columns"]["leiden_0.8_2"]["n_clusters"] == data.columns[-1].labels.categories.size


def test_summary_links_every_dataset(built, tmp_path):
    _, summary, _ = built
    other = {**summary, "id": "second"}
    build_summary([summary, other], tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    assert 'href="second/report.html"' in text
    assert 'href="pbmc%20%3Ctest%3E%20%26%20%27quotes%27/report.html"' in text
    assert "leiden_0.8_1 (" in text and text.count('<img src="data:image/png;base64,') == 1


def test_tree_children_sit_under_their_parents():
    parent = pd.Categorical(["0"] * 6 + ["1"] * 4 + ["2"] * 2)
    child = pd.Categorical(["0_0"] * 3 + ["0_1"] * 3 + ["1_0", "1_0", "1_1", "1_1"] + ["2"] * 2)
    assert overlap(parent, child).tolist() == [[3, 3, 0, 0, 0], [0, 0, 2, 2, 0], [0, 0, 0, 0, 2]]
    x_parent, x_child = layout([Row("level 1", parent), Row("level 2", child)])
    order = [child.categories[i] for i in np.argsort(x_child)]
    assert order == ["0_0", "0_1", "1_0", "1_1", "2"]
    assert x_parent[0] < x_parent[1] < x_parent[2]


@pytest.mark.parametrize("n", [5, LEGEND_MAX, LEGEND_MAX + 10])
@pytest.mark.parametrize("cluster", [True, False])
def test_umap_legend_when_few_labels_on_data_when_many(n, cluster):
    rng = np.random.default_rng(0)
    values = pd.Series([f"c{i}" for i in rng.integers(0, n, 3000)])
    coords = rng.normal(size=(3000, 2))
    fig, ax = plt.subplots()
    draw_categories(ax, coords, values, subsample(3000, 1000), cluster=cluster)
    legend = ax.get_legend()
    colours = {tuple(c) for c in ax.collections[0].get_facecolors()}
    plt.close(fig)
    assert len(colours) == n, "every category has its own colour"
    if n <= LEGEND_MAX:
        assert legend is not None and len(legend.get_texts()) == n
    else:
        assert legend is None
    labels_on_data = [t.get_text() for t in ax.texts]
    assert sorted(labels_on_data) == (sorted(values.unique()) if cluster or n > LEGEND_MAX else [])


def test_contingency_counts_cells_and_orders_clusters_numerically():
    clusters = pd.Series(["10", "2", "2", "10", "1_0"])
    labels = pd.Series(["b", "a", None, "a", "b"])
    table = contingency(clusters, labels)
    assert list(table.index) == ["1_0", "2", "10"] and list(table.columns) == ["NA", "a", "b"]
    assert table.loc["2", "a"] == 1 and table.loc["2", "NA"] == 1 and table.to_numpy().sum() == 5


def test_umap_colours_may_name_a_column_this_run_creates(pbmc, tmp_path):
    """PREFLIGHT accepts --umap_colors naming a result column; REPORT reads only the input's own columns from obs."""
    path = tmp_path / "in.zarr"
    pbmc.write_zarr(path)
    cfg = config_from_params({"input": str(path), "resolutions": "0.5", "umap_colors": "leiden_0.5_1,bulk_labels"})
    obs, coords, earlier = read_shown(str(path), cfg, None)
    assert list(obs.columns) == ["bulk_labels"] and coords.shape == (pbmc.n_obs, 2) and earlier == []


def test_many_clusters_get_scanpys_palette_without_importing_scanpy():
    from scanpy.plotting.palettes import default_102

    assert palette(150) == [default_102[i % 102] for i in range(150)]
    assert palette(3) == [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors[:3]]
    code = "import sys, scclust.report, scclust.plots as p; p.palette(30); assert 'scanpy' not in sys.modules, 'scanpy'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_backend_section_says_where_each_column_ran_and_why():
    from scclust.report import backend_section

    labels = pd.Categorical(["0", "1"])
    no_seed = "rapids-singlecell 0.18 louvain takes no seed (cuGraph issue 5516): run on the CPU"
    columns = [
        ColumnResult("leiden_1.0_1", labels, {"requested_gpu": True, "backend": "gpu", "backend_reason": "GPU (x)"}),
        ColumnResult("louvain_1.0_1", labels, {"requested_gpu": True, "backend": "cpu", "backend_reason": no_seed}),
        ColumnResult(
            "leiden_1.0_2",
            labels,
            {
                "requested_gpu": True,
                "backend": "mixed",
                "subclusters": {"0": {"backend_reason": "GPU (x)"}, "1": {"backend_reason": "12 cells < n_cell_cpu 99"}},
                "fallback": {"0": "GPU error: E"},
            },
        ),
    ]
    html = backend_section(columns)
    assert "1 of 3 columns on the GPU" in html
    assert no_seed in html
    assert "12 cells &lt; n_cell_cpu 99; GPU (x)" in html
    assert "0: GPU error: E" in html
    assert backend_section([ColumnResult("leiden_1.0_1", labels, {"requested_gpu": False, "backend": "cpu"})]) == ""
