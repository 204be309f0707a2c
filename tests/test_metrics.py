"""Per-column metrics and bootstrap stability (scclust.metrics, scclust.stability): library logic, no Nextflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scanpy._utils import get_igraph_from_adjacency
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from scclust.clustering import GraphClusterer, column_name, labels_from_membership
from scclust.config import config_from_params
from scclust.dataset import inspect_dataset
from scclust.errors import UserError
from scclust.metrics import (
    ColumnScorer,
    compute_metrics,
    metrics_table,
    silhouette_cells,
    write_metrics,
)
from scclust.results import ColumnResult
from scclust.stability import (
    ColumnStability,
    best_jaccard,
    cluster_bootstrap,
    recommend,
    recommendation_basis,
    subsample,
    write_bootstrap,
)
from scclust.stability_summary import column_summary, jackknife_se, loo_per_cluster, summarise, variance_ratio
from scclust.testdata import pbmc


@pytest.fixture(scope="module")
def adata():
    return pbmc()


def brute_force_jaccard(full: np.ndarray, boot: np.ndarray) -> dict[int, float]:
    """Clusterboot's definition with Python sets: best |A & B| / |A | B| over bootstrap clusters B."""
    out = {}
    for a in np.unique(full):
        cells_a = set(np.flatnonzero(full == a))
        out[int(a)] = max(len(cells_a & (b := set(np.flatnonzero(boot == k)))) / len(cells_a | b) for k in np.unique(boot))
    return out


def test_best_jaccard_equals_the_set_definition():
    rng = np.random.default_rng(1)
    for _ in range(20):
        full = rng.integers(0, 6, 200)
        full[full == 4] = 5  # cluster 4 has no sampled cell: NaN, as clusterboot skips it
        boot = np.where(rng.random(200) < 0.7, full, rng.integers(0, 8, 200))
        got = best_jaccard(full, boot, n_full=7)
        expected = brute_force_jaccard(full, boot)
        assert np.isnan(got[4]) and np.isnan(got[6])
        for a, value in expected.items():
            assert got[a] == pytest.approx(value)


def test_stability_of_a_split_and_of_identical_clusterings():
    labels = pd.Categorical(["0"] * 50 + ["1"] * 50)
    acc = ColumnStability(labels.codes.astype(np.int64), 2)
    cells = np.arange(100)
    acc.add(1, cells, np.array([3] * 50 + [7] * 50))  # same partition, other ids: 1.0
    acc.add(0, cells, np.array([0] * 50 + [1] * 25 + [2] * 25))  # cluster 1 split in halves: Jaccard 0.5
    assert acc.bootstraps == [0, 1] and acc.table()[:, 1].tolist() == [0.5, 1.0]
    entry = column_summary(labels, acc)
    assert entry["cluster_stability"] == {"0": 1.0, "1": 0.75} and entry["stability_min"] == 0.75
    # jackknife errors 0.125 (leave-one-out medians 0.75 and 1.0) and 0.25 (minima 0.5 and 1.0), widened for two
    # bootstraps so that +- 1.96 errors is Student's 95% interval with one degree of freedom
    widen = 12.706204736174707 / 1.959963984540054
    assert entry["stability_se"] == pytest.approx(0.125 * widen)
    assert entry["stability_min_se"] == pytest.approx(0.25 * widen)
    assert acc.aris()[1] == 1.0 and acc.aris()[0] < 1.0


def test_the_lowest_clusters_error_is_at_least_the_columns_pooled_variation():
    # the lowest cluster reads 0.6 in all three bootstraps (jackknife error 0) while another varies: its error is
    # the floor sqrt(ratio * 0.5 * 0.5 / k), ratio = the clusters' summed variances over their summed m (1 - m)
    table = np.array([[0.6, 0.9, 1.0], [0.6, 0.3, 1.0], [0.6, 0.9, 1.0]])
    labels = pd.Categorical(["0", "1", "2"])
    acc = ColumnStability(labels.codes.astype(np.int64), 3)
    acc.rows = {b: (row, 1.0) for b, row in enumerate(table)}
    entry = column_summary(labels, acc)
    ratio = 0.12 / (0.6 * 0.4 + 0.7 * 0.3)
    assert entry["stability_min"] == pytest.approx(0.6)
    assert entry["stability_min_se"] == pytest.approx(np.sqrt(ratio * 0.25 / 3))
    assert variance_ratio(np.ones((3, 4))) == 0.0 and variance_ratio(np.full((3, 2), np.nan)) == 0.0


def test_subsample_is_seeded_and_sized():
    a = subsample(1000, 0.8, seed=0, bootstrap=3)
    assert len(a) == 800 and len(np.unique(a)) == 800 and (np.diff(a) > 0).all()
    assert (subsample(1000, 0.8, seed=0, bootstrap=3) == a).all()
    assert not np.array_equal(subsample(1000, 0.8, seed=0, bootstrap=4), a)
    assert not np.array_equal(subsample(1000, 0.8, seed=1, bootstrap=3), a)


def test_bootstrap_clustering_is_reproducible_and_uses_the_induced_subgraph(adata):
    cfg = config_from_params({"resolutions": "0.5,1.0", "stability_bootstraps": 2})
    conn = adata.obsp["connectivities"]
    one = cluster_bootstrap(conn, cfg, "leiden", cfg.resolutions, 1)
    two = cluster_bootstrap(conn, cfg, "leiden", cfg.resolutions, 1)
    assert list(one["columns"]) == ["leiden_0.5_1", "leiden_1.0_1"]
    for name in one["columns"]:
        assert np.array_equal(one["columns"][name], two["columns"][name])
    cells = one["cells"]
    direct = GraphClusterer(conn[cells][:, cells]).membership(cfg.spec("leiden", 1.0))
    assert np.array_equal(one["columns"]["leiden_1.0_1"], direct)


def entry(column: str, resolution: float, stability: float, weighted: float, unstable: int, algorithm: str = "leiden") -> dict:
    return {
        "column": column,
        "algorithm": algorithm,
        "level": 1,
        "run_resolution": resolution,
        "stability": stability,
        "stability_weighted": weighted,
        "n_unstable_clusters": unstable,
    }


def test_recommendation_rule_on_constructed_cases():
    cols = {
        "a": entry("a", 0.2, 0.95, 0.97, 0),
        "b": entry("b", 0.5, 0.80, 0.85, 0),  # highest that qualifies
        "c": entry("c", 1.0, 0.90, 0.90, 1),  # one dissolved cluster disqualifies
        "d": entry("d", 2.0, 0.70, 0.80, 0),  # median below 0.75 disqualifies
        "e": entry("e", 0.5, 0.60, 0.70, 2, "louvain"),  # nothing qualifies: most cell-weighted stable
        "f": entry("f", 1.0, 0.60, 0.72, 3, "louvain"),
        "g": entry("g", 2.0, 0.60, 0.72, 3, "louvain"),  # tie: the lower resolution wins
    }
    assert recommend(cols) == {"leiden": "b", "louvain": "f"}
    basis = recommendation_basis(cols, recommend(cols))
    assert basis["leiden"] == "met the rule" and basis["louvain"].startswith("fallback")
    assert recommend({"x": {**entry("x", 1.0, 0.9, 0.9, 0), "level": 2}}) == {}


def level1_columns(adata, cfg) -> list[ColumnResult]:
    clusterer = GraphClusterer(adata.obsp["connectivities"])
    out = []
    for a in cfg.algorithms:
        for r in cfg.resolutions:
            params = {"algorithm": a, "level": 1, "resolution": r, "run_resolution": r}
            out.append(ColumnResult(column_name(a, r, 1), clusterer.labels(cfg.spec(a, r)), params))
    return out


def test_metrics_equal_direct_sklearn_and_igraph_calls(adata, tmp_path):
    cfg = config_from_params({"resolutions": "0.3,1.0", "algorithm": "leiden,louvain", "stability_bootstraps": 3})
    columns = level1_columns(adata, cfg)
    files = []
    for b in range(3):
        for a in cfg.algorithms:
            files.append(tmp_path / f"{a}.{b}.npz")
            write_bootstrap(
                files[-1], cluster_bootstrap(adata.obsp["connectivities"], cfg, a, cfg.resolutions, b), fingerprint="fp"
            )
    cells = silhouette_cells(adata.n_obs, cfg.seed)
    truth = adata.obs["bulk_labels"].astype(str).to_numpy()
    labels = {"bulk_labels": pd.factorize(truth)[0]}
    rep = ("X_pca", cells, adata.obsm["X_pca"][cells])
    scorer = ColumnScorer(cfg, adata.obsp["connectivities"], rep=rep, labels=labels)
    for col in columns:
        col.metrics = scorer.score(col)
    labels = {c.name: c.labels for c in columns}
    stability = summarise(cfg, labels, files, fingerprint="fp")[0]
    assert summarise(cfg, labels, files[::-1], fingerprint="fp")[0] == stability
    with pytest.raises(UserError, match="has no metrics"):
        compute_metrics(cfg, [*columns, level1_columns(adata, cfg)[0]], stability=stability)
    with pytest.raises(UserError, match="no stability file"):
        compute_metrics(cfg, columns, stability=None)
    doc = compute_metrics(cfg, columns, stability=stability)
    g = get_igraph_from_adjacency(adata.obsp["connectivities"], directed=False)
    for col in columns:
        m = doc["columns"][col.name]
        membership = col.labels.codes.tolist()
        assert m["n_clusters"] == len(col.labels.categories) == len(m["cluster_sizes"])
        assert m["modularity"] == pytest.approx(g.modularity(membership, weights="weight"))
        assert m["modularity_at_resolution"] == pytest.approx(
            g.modularity(membership, weights="weight", resolution=col.params["resolution"])
        )
        assert m["silhouette"] == pytest.approx(silhouette_score(adata.obsm["X_pca"], col.labels.codes), abs=1e-5)
        assert m["silhouette_n_cells"] == adata.n_obs and m["silhouette_rep"] == "X_pca"
        assert m["ari_bulk_labels"] == pytest.approx(adjusted_rand_score(truth, col.labels))
        assert m["nmi_bulk_labels"] == pytest.approx(normalized_mutual_info_score(truth, col.labels))
        assert 0 <= m["stability"] <= 1 and m["n_stable_clusters"] + m["n_unstable_clusters"] <= m["n_clusters"]
        assert m["n_bootstraps"] == 3 and m["stability_min"] == min(m["cluster_stability"].values())
        assert m["stability_se"] >= 0 and m["stability_min_se"] >= 0 and m["stability_weighted_se"] >= 0
        assert len(doc["stability"]["ari"][col.name]) == 3
    low, high = columns[0], columns[1]
    assert "previous_column" not in doc["columns"][low.name]
    assert doc["columns"][high.name]["previous_column"] == low.name
    assert doc["columns"][high.name]["ari_previous"] == pytest.approx(adjusted_rand_score(low.labels, high.labels))
    assert set(doc["recommended"]) == {"leiden", "louvain"}
    write_metrics(doc, tmp_path / "m.json", tmp_path / "m.tsv")
    table = pd.read_csv(tmp_path / "m.tsv", sep="\t")
    assert list(table["column"]) == [c.name for c in columns] and table.columns[0] == "column"
    assert {"n_clusters", "modularity", "silhouette", "stability", "ari_bulk_labels"} <= set(table.columns)
    assert json.loads((tmp_path / "m.json").read_text()) == doc
    assert len(metrics_table(doc)) == len(columns)


def test_stability_needs_every_bootstrap(adata, tmp_path):
    cfg = config_from_params({"resolutions": "1.0", "stability_bootstraps": 2})
    write_bootstrap(
        tmp_path / "b0.npz", cluster_bootstrap(adata.obsp["connectivities"], cfg, "leiden", [1.0], 0), fingerprint="fp"
    )
    labels = {
        "leiden_1.0_1": labels_from_membership(GraphClusterer(adata.obsp["connectivities"]).membership(cfg.spec("leiden", 1.0)))
    }
    with pytest.raises(UserError, match="has 1 of 2 bootstraps"):
        summarise(cfg, labels, [tmp_path / "b0.npz"], fingerprint="fp")
    one = config_from_params({"resolutions": "1.0", "stability_bootstraps": 1})
    with pytest.raises(UserError, match="other cells"):
        summarise(one, labels, [tmp_path / "b0.npz"], fingerprint="other")
    # one bootstrap: the statistics, and no standard error (left out, with the reason)
    entry = summarise(one, labels, [tmp_path / "b0.npz"], fingerprint="fp")[0]["columns"]["leiden_1.0_1"]
    assert entry["n_bootstraps"] == 1 and "stability" in entry and "stability_se" not in entry
    assert set(entry["undefined"]) == {"stability_se", "stability_min_se", "stability_weighted_se"}


def test_leave_one_out_means_and_jackknife_error():
    rng = np.random.default_rng(0)
    table = rng.uniform(0, 1, (6, 40))
    table[rng.uniform(size=table.shape) < 0.2] = np.nan
    table[:, 0] = np.nan  # a cluster no bootstrap sampled
    table[1:, 1] = np.nan  # a cluster only bootstrap 0 sampled
    full, loo = loo_per_cluster(table)
    assert full[0] == 0 and full[1] == table[0, 1]
    assert np.allclose(full[2:], np.nanmean(table[:, 2:], axis=0))
    for i in range(len(table)):
        rest = np.delete(table, i, axis=0)
        with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty slice"):
            expected = np.nanmean(rest, axis=0)
        expected = np.where(np.isnan(expected), full, expected)
        assert np.allclose(loo[i], expected)
    # for a statistic linear in the bootstraps (the mean of complete rows), the jackknife error is the usual
    # standard error of the mean of the per-bootstrap values
    complete = rng.uniform(0, 1, (7, 30))
    _, loo = loo_per_cluster(complete)
    per_bootstrap = complete.mean(axis=1)
    assert jackknife_se(loo.mean(axis=1)) == pytest.approx(per_bootstrap.std(ddof=1) / np.sqrt(7))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"subsample_fraction": 1.0}, "--subsample_fraction must be between 0 and 1"),
        ({"subsample_fraction": 0}, "--subsample_fraction must be greater than 0"),
        ({"stability_bootstraps": -1}, "--stability_bootstraps must be at least 0"),
        ({"label_columns": "batch,batch"}, "--label_columns lists 'batch' twice"),
    ],
)
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(UserError, match=message):
        config_from_params({"resolutions": "1.0", **params})


def test_label_column_typo_is_refused_at_preflight(adata, tmp_path: Path):
    path = tmp_path / "pbmc.h5ad"
    adata.write_h5ad(path)
    cfg = config_from_params({"resolutions": "1.0", "label_columns": "bulk_labels,bulk_label"})
    with pytest.raises(UserError, match=r"--label_columns: 'bulk_label' is not an obs column .* did you mean 'bulk_labels'"):
        inspect_dataset(path, cfg, "pbmc")


def test_modularity_on_the_graph_of_clusters_is_scanpys_modularity():
    import scipy.sparse as sp

    from scclust.metrics import modularity

    adjacency = sp.random(300, 300, density=0.05, random_state=0, format="csr")  # not symmetric, with self-loops
    reference = get_igraph_from_adjacency(adjacency, directed=False)
    for n_clusters in (1, 5, 300):
        codes = np.random.default_rng(n_clusters).permutation(np.arange(300) % n_clusters)
        expected = [reference.modularity(codes.tolist(), weights="weight", resolution=r) for r in (1.0, 0.4, 2.0)]
        assert modularity(adjacency, codes, [1.0, 0.4, 2.0]) == pytest.approx(expected, abs=1e-12)
    # scanpy stores float32 weights; igraph sums them as doubles, and so must the graph of clusters
    adjacency = sp.random(3000, 3000, density=0.05, random_state=1, format="csr", dtype=np.float32)
    reference = get_igraph_from_adjacency(adjacency, directed=False)
    codes = np.random.default_rng(1).permutation(np.arange(3000) % 3)
    expected = [reference.modularity(codes.tolist(), weights="weight", resolution=r) for r in (1.0, 0.4)]
    assert modularity(adjacency, codes, [1.0, 0.4]) == pytest.approx(expected, abs=1e-12)


def test_agreement_is_sklearns_and_leaves_out_trivial_labelings():
    from scclust.metrics import add_scores, agreement

    rng = np.random.default_rng(3)
    for a, b in [(rng.integers(0, 7, 500), rng.integers(0, 4, 500)), (np.arange(9) % 2, np.arange(9) % 3)]:
        got = agreement("x", a, b)
        assert got["ari_x"] == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
        assert got["nmi_x"] == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)
        assert "undefined" not in got
    # scikit-learn scores each of these as perfect (1.0) or as 0 against a constant: none is an agreement
    trivial = [(np.zeros(9, int), np.zeros(9, int)), (np.zeros(9, int), np.arange(9)), (np.arange(9), np.ones(9, int))]
    trivial += [(np.zeros(1, int), np.zeros(1, int)), (np.zeros(0, int), np.zeros(0, int))]
    for a, b in trivial:
        got = agreement("x", a, b)
        assert set(got) == {"undefined"} and set(got["undefined"]) == {"ari_x", "nmi_x"}, (a, b)
    singletons = agreement("x", np.arange(9), np.arange(9))
    assert singletons["nmi_x"] == 1.0 and set(singletons["undefined"]) == {"ari_x"}
    out = {"undefined": {"ari_y": "why"}}
    add_scores(out, agreement("x", np.zeros(5, int), np.arange(5)))
    assert set(out["undefined"]) == {"ari_y", "ari_x", "nmi_x"}
