"""Metrics and stability through the real pipeline: metrics.tsv, uns metrics, reproducible bootstraps, recommendation."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from conftest import run_pipeline

pytestmark = pytest.mark.pipeline

ARGS = ["--algorithm", "leiden,louvain", "--resolutions", "0.3,1.0", "--label_columns", "bulk_labels,batch"]
LEVEL1 = ["leiden_0.3_1", "leiden_1.0_1", "louvain_0.3_1", "louvain_1.0_1"]


@pytest.fixture(scope="module")
def runs(testdata, tmp_path_factory):
    """With 3 bootstraps (two levels), the same seed batched differently, and without bootstraps."""
    h5ad = str(testdata["h5ad"])
    out = {}
    for name, extra in {
        "boot": ["--stability_bootstraps", "3", "--hierarchy", "2", "--resolutions_per_task", "1"],
        "again": ["--stability_bootstraps", "3", "--resolutions_per_task", "2"],
        "none": ["--stability_bootstraps", "0"],
    }.items():
        out[name] = run_pipeline(tmp_path_factory.mktemp(name), "--input", h5ad, *ARGS, *extra).ok()
    return out


def table(run) -> pd.DataFrame:
    return pd.read_csv(run.outdir / "pbmc" / "metrics.tsv", sep="\t", index_col="column")


def test_metrics_tsv_has_a_row_per_column_and_the_promised_columns(runs):
    boot = table(runs["boot"])
    assert list(boot.index) == [f"{a}_{r}_{level}" for a in ("leiden", "louvain") for r in ("0.3", "1.0") for level in (1, 2)]
    for key in ("n_clusters", "size_min", "size_median", "size_max", "n_small_clusters", "modularity"):
        assert boot[key].notna().all(), key
    for key in ("silhouette", "modularity_at_resolution", "ari_bulk_labels", "nmi_bulk_labels", "ari_batch", "nmi_batch"):
        assert boot[key].notna().all(), key
    level1, level2 = boot[boot["level"] == 1], boot[boot["level"] == 2]
    assert level1["stability"].between(0, 1).all() and level2["stability"].isna().all()
    assert (level2["n_parents"] == boot.loc[level2["parent_column"], "n_clusters"].to_numpy()).all()
    assert (level2["n_parents_split"] <= level2["n_parents"]).all()
    # clusters follow the cell types far more than the random batch
    assert (boot["ari_bulk_labels"] > boot["ari_batch"] + 0.1).all()
    assert boot.loc["leiden_1.0_1", "previous_column"] == "leiden_0.3_1"
    none = table(runs["none"])
    assert "stability" not in none.columns and "n_clusters" in none.columns


def test_uns_metrics_and_recommendation_only_with_bootstraps(runs):
    merged = ad.read_zarr(runs["boot"].outdir / "pbmc" / "clustering.zarr")
    boot = table(runs["boot"])
    for column in boot.index:
        metrics = merged.uns[column]["metrics"]
        assert int(metrics["n_clusters"]) == merged.obs[column].nunique() == boot.loc[column, "n_clusters"]
        assert float(metrics["modularity"]) == pytest.approx(boot.loc[column, "modularity"])
    stability = merged.uns["leiden_1.0_1"]["metrics"]["cluster_stability"]
    assert set(stability) == set(merged.obs["leiden_1.0_1"].cat.categories)
    assert np.median(list(stability.values())) == pytest.approx(boot.loc["leiden_1.0_1", "stability"])
    recommended = dict(merged.uns["scclust"]["recommended"])
    assert set(recommended) == {"leiden", "louvain"} and set(recommended.values()) <= set(LEVEL1)
    assert "0.75" in merged.uns["scclust"]["recommendation_rule"]
    # whether each recommendation met the rule or is its fallback, as the column's own metrics say
    for algorithm, column in recommended.items():
        met = boot.loc[column, "stability"] >= 0.75 and boot.loc[column, "n_unstable_clusters"] == 0
        assert (merged.uns["scclust"]["recommendation_basis"][algorithm] == "met the rule") == met
    plain = ad.read_zarr(runs["none"].outdir / "pbmc" / "clustering.zarr")
    assert "recommended" not in plain.uns["scclust"]
    assert "stability" not in plain.uns["leiden_1.0_1"]["metrics"] and "modularity" in plain.uns["leiden_1.0_1"]["metrics"]


def test_same_seed_gives_the_same_stability_whatever_the_batching(runs):
    first, second = table(runs["boot"]).loc[LEVEL1], table(runs["again"]).loc[LEVEL1]
    keys = ("stability", "stability_weighted", "stability_min", "ari_bootstrap_median", "n_stable_clusters")
    keys += ("n_unstable_clusters", "stability_se", "stability_min_se", "stability_weighted_se", "n_bootstraps")
    for key in keys:
        assert first[key].tolist() == second[key].tolist(), key
    assert (first["n_bootstraps"] == 3).all() and (first["stability_se"] >= 0).all()
    # the bootstrap files are read once, by STABILITY_SUMMARY (MERGE and REPORT read its stability.json)
    trace = next((runs["boot"].outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text()
    assert trace.count("STABILITY_SUMMARY (pbmc)") == 1 and trace.count("STABILITY (pbmc") == 3 * 4
    # and the metrics agree with a direct computation on the labels that were written
    merged = ad.read_zarr(runs["again"].outdir / "pbmc" / "clustering.zarr")
    ari = adjusted_rand_score(merged.obs["bulk_labels"], merged.obs["leiden_1.0_1"])
    assert second.loc["leiden_1.0_1", "ari_bulk_labels"] == pytest.approx(ari)
