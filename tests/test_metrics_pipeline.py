"""Metrics and stability through the real pipeline: metrics.tsv, uns metrics, adaptive rounds against a fixed run,
resuming between rounds, reproducible bootstraps, recommendation."""

from __future__ import annotations

import html

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from conftest import run_pipeline
from scclust.stability import read_bootstrap
from scclust.stability_rounds import outcome

pytestmark = pytest.mark.pipeline

# 2.0 keeps a column uncertain through every round (10 bootstraps); the others settle after 3 or 6
ARGS = ["--algorithm", "leiden,louvain", "--resolutions", "0.3,1.0,2.0", "--label_columns", "bulk_labels,batch"]
LEVEL1 = [f"{a}_{r}_1" for a in ("leiden", "louvain") for r in ("0.3", "1.0", "2.0")]


@pytest.fixture(scope="module")
def runs(testdata, tmp_path_factory):
    """Adaptive stability (two levels), interrupted before its second round and resumed; a fixed run of the same
    cap, batched differently; a run without bootstraps."""
    h5ad = str(testdata["h5ad"])
    out = {}
    work = tmp_path_factory.mktemp("boot")
    # adaptive is the default (--stability_adaptive true)
    adaptive = ["--input", h5ad, *ARGS, "--stability_bootstraps", "10", "--hierarchy", "2"]
    adaptive += ["--resolutions_per_task", "2"]
    stop = work / "stop.config"
    # the local executor kills a task past its time limit: the run stops once round 1 has been summarised
    stop.write_text("process { withName: '.*ROUND_2:STABILITY' { time = '1ms'; maxRetries = 0; errorStrategy = 'terminate' } }\n")
    out["stopped"] = run_pipeline(work, *adaptive, "-c", str(stop))
    assert out["stopped"].returncode != 0
    out["stopped_trace"] = trace(out["stopped"])
    out["boot"] = run_pipeline(work, *adaptive, "-resume").ok()
    for name, extra in {
        "fixed": ["--stability_bootstraps", "10", "--stability_adaptive", "false", "--resolutions_per_task", "3"],
        "none": ["--stability_bootstraps", "0"],
    }.items():
        out[name] = run_pipeline(tmp_path_factory.mktemp(name), "--input", h5ad, *ARGS, *extra).ok()
    return out


def trace(run) -> pd.DataFrame:
    """The run's execution trace (the newest: a resumed run adds its own)."""
    path = max((run.outdir / "pipeline_info").glob("execution_trace_*.txt"), key=lambda p: p.stat().st_mtime_ns)
    return pd.read_csv(path, sep="\t")


def table(run) -> pd.DataFrame:
    return pd.read_csv(run.outdir / "pbmc" / "metrics.tsv", sep="\t", index_col="column")


def test_metrics_tsv_has_a_row_per_column_and_the_promised_columns(runs):
    boot = table(runs["boot"])
    assert list(boot.index) == [
        f"{a}_{r}_{level}" for a in ("leiden", "louvain") for r in ("0.3", "1.0", "2.0") for level in (1, 2)
    ]
    for key in ("n_clusters", "size_min", "size_median", "size_max", "n_small_clusters", "modularity"):
        assert boot[key].notna().all(), key
    for key in ("silhouette", "modularity_at_resolution", "ari_bulk_labels", "nmi_bulk_labels", "ari_batch", "nmi_batch"):
        assert boot[key].notna().all(), key
    level1, level2 = boot[boot["level"] == 1], boot[boot["level"] == 2]
    assert level1["stability"].between(0, 1).all() and level2["stability"].isna().all()
    assert (level2["n_parents"] == boot.loc[level2["parent_column"], "n_clusters"].to_numpy()).all()
    assert (level2["n_parents_split"] <= level2["n_parents"]).all()
    # clusters follow the cell types far more than the random batch
    assert (level1["ari_bulk_labels"] > level1["ari_batch"] + 0.1).all()
    assert (level2["ari_bulk_labels"] > level2["ari_batch"]).all()
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


def test_adaptive_rounds_settle_some_columns_and_agree_with_the_fixed_run(runs):
    adaptive, fixed = table(runs["boot"]).loc[LEVEL1], table(runs["fixed"]).loc[LEVEL1]
    assert set(adaptive["n_bootstraps"]) <= {3, 6, 10} and (fixed["n_bootstraps"] == 10).all()
    settled, more = adaptive[adaptive["n_bootstraps"] == 3], adaptive[adaptive["n_bootstraps"] > 3]
    assert len(settled) and len(more), "pbmc at these resolutions has settled and unsettled columns after round 1"
    # from the rule and the errors: a column left at 3 is sure to pass or fail the rule, or lies below a resolution
    # of its algorithm that surely passes; one that got more had an interval reaching a mark after round 1
    entries = {c: {**row.to_dict(), "n_bootstraps": int(row["n_bootstraps"])} for c, row in adaptive.iterrows()}
    for column, row in settled.iterrows():
        higher_pass = [
            c
            for c, r in settled.iterrows()
            if r["algorithm"] == row["algorithm"] and r["resolution"] > row["resolution"] and outcome(entries[c]) == "pass"
        ]
        assert outcome(entries[column]) != "uncertain" or higher_pass, column
        assert row["n_bootstraps_reason"] == "round 1: 3, settled"
    for column, row in more.iterrows():
        assert row["n_bootstraps_reason"].startswith("round 1: 3, then more: "), column
    # the same recommendation, and the same bits for every column that got all its bootstraps
    merged = {name: ad.read_zarr(runs[name].outdir / "pbmc" / "clustering.zarr") for name in ("boot", "fixed")}
    assert dict(merged["boot"].uns["scclust"]["recommended"]) == dict(merged["fixed"].uns["scclust"]["recommended"])
    keys = ["stability", "stability_weighted", "stability_min", "ari_bootstrap_median", "n_stable_clusters"]
    keys += ["n_unstable_clusters", "stability_se", "stability_min_se", "stability_weighted_se"]
    full = adaptive.index[adaptive["n_bootstraps"] == 10]
    assert len(full)
    # the adaptive table's counts are floats only because its level-2 rows leave them empty
    pd.testing.assert_frame_equal(adaptive.loc[full, keys], fixed.loc[full, keys], check_dtype=False, check_exact=True)
    for column in full:
        assert dict(merged["boot"].uns[column]["metrics"]["cluster_stability"]) == dict(
            merged["fixed"].uns[column]["metrics"]["cluster_stability"]
        )
    certainty = dict(merged["boot"].uns["scclust"]["recommendation_certainty"])
    assert set(certainty) == {"leiden", "louvain"} and all(c.startswith(("sure", "uncertain")) for c in certainty.values())
    # the report says why each column got its bootstraps, and which recommendations more could change
    report = (runs["boot"].outdir / "pbmc" / "report.html").read_text()
    assert (
        "Adaptive bootstraps" in report
        and "Adaptive bootstraps" not in (runs["fixed"].outdir / "pbmc" / "report.html").read_text()
    )
    for column, row in adaptive.iterrows():
        assert html.escape(row["n_bootstraps_reason"]) in report, column
    for algorithm, text in certainty.items():
        assert (f"{algorithm}: the recommendation is uncertain" in report) == text.startswith("uncertain")


def test_bootstrap_b_draws_the_same_cells_in_every_run_and_round(runs):
    cells = {}
    for name in ("boot", "fixed"):
        for path in (runs[name].outdir.parent / "work").rglob("bootstrap.npz"):
            meta, drawn, _ = read_bootstrap(path)
            cells.setdefault(meta["bootstrap"], []).append(drawn)
    assert sorted(cells) == list(range(10))
    for b, draws in cells.items():
        assert all(np.array_equal(d, draws[0]) for d in draws), b


def test_resume_after_an_interrupt_between_rounds_reruns_nothing_finished(runs):
    stopped, resumed = runs["stopped_trace"], trace(runs["boot"])
    finished = stopped[stopped["status"] == "COMPLETED"]
    assert finished["name"].str.contains("ROUND_1:STABILITY_SUMMARY").any()
    assert not stopped["name"].str.contains("ROUND_2:STABILITY_SUMMARY").any()
    again = resumed.set_index("hash").loc[finished["hash"]]
    assert (again["status"] == "CACHED").all(), again[again["status"] != "CACHED"]["name"].tolist()
    assert resumed[resumed["status"] == "COMPLETED"]["name"].str.contains("ROUND_2:STABILITY").any()
    # the bootstrap files are read once each, by the round that made them
    rounds = sum(target <= table(runs["boot"])["n_bootstraps"].max() for target in (3, 6, 10))
    assert resumed["name"].str.contains("STABILITY_SUMMARY").sum() == rounds


def test_batching_and_rounds_change_no_label(runs):
    merged = ad.read_zarr(runs["fixed"].outdir / "pbmc" / "clustering.zarr")
    ari = adjusted_rand_score(merged.obs["bulk_labels"], merged.obs["leiden_1.0_1"])
    assert table(runs["fixed"]).loc["leiden_1.0_1", "ari_bulk_labels"] == pytest.approx(ari)
    boot = ad.read_zarr(runs["boot"].outdir / "pbmc" / "clustering.zarr")
    for column in LEVEL1:
        assert (boot.obs[column].astype(str) == merged.obs[column].astype(str)).all(), column
