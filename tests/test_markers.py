"""Marker genes from one pass: scanpy's t-test to the bit where it can be, chunk-invariant, bad input refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from scclust import io
from scclust.errors import UserError
from scclust.markers import Column, Layout, Moments, t_test
from scclust.markers_io import check_markers_input, read_entries, write_markers
from scclust.markers_pass import accumulate, compute, plan_markers, write_sums
from scclust.testdata import pbmc, pbmc_counts

REL = 1e-10


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    """pbmc68k_reduced with a level-2 column: each louvain cluster split by bulk label where a label has >= 5 cells."""
    a = pbmc()
    a.obs["random"] = pd.Categorical(np.random.default_rng(1).integers(0, 4, a.n_obs).astype(str))
    parent = a.obs["louvain"].astype(str)
    child = parent.copy()
    for p in parent.unique():
        cells = parent == p
        bulk = a.obs.loc[cells, "bulk_labels"].astype(str)
        big = [b for b, n in bulk.value_counts().items() if n >= 5]
        if len(big) >= 2:
            code = bulk.map({b: str(i) for i, b in enumerate(sorted(big))}).fillna(str(len(big) - 1))
            child[cells] = p + "_" + code
    a.obs["level2"] = pd.Categorical(child)
    return a


def columns(a: ad.AnnData) -> list[Column]:
    return [
        Column("louvain", a.obs["louvain"].values),
        Column("bulk_labels", a.obs["bulk_labels"].values),
        Column("random", a.obs["random"].values),
        Column("level2", a.obs["level2"].values, level=2, parent="louvain"),
    ]


def write(a: ad.AnnData, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix == ".zarr":
            a.write_zarr(path)
        else:
            a.write_h5ad(path)
    return path


def info_of(path: Path, layer: str | None = None, gene_symbols: str | None = None) -> dict:
    with io.open_store(path) as root:
        return check_markers_input(root, path, layer=layer, gene_symbols=gene_symbols, n_obs=io.n_obs(root))


def scanpy_ranking(a: ad.AnnData, column: str, **kwargs) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(a, column, method="t-test", pts=True, key_added="ref", **kwargs)
    return a.uns["ref"]


def assert_matches(ranking, ref: dict, genes: pd.Index) -> None:
    """p-values within 1e-10 relative, scores and logFC equal as float32, pts equal, same gene order."""
    assert ranking.groups == list(ref["names"].dtype.names)
    top = ranking.top(len(genes))
    for i, g in enumerate(ranking.groups):
        np.testing.assert_array_equal(np.asarray(genes)[top[i]], ref["names"][g])
        for mine, theirs in ((ranking.pvals, "pvals"), (ranking.pvals_adj, "pvals_adj")):
            np.testing.assert_allclose(mine[i][top[i]], ref[theirs][g], rtol=REL, atol=0)
        np.testing.assert_array_equal(ranking.scores[i][top[i]].astype(np.float32), ref["scores"][g])
        np.testing.assert_array_equal(ranking.logfoldchanges[i][top[i]].astype(np.float32), ref["logfoldchanges"][g])
        np.testing.assert_array_equal(ranking.pts[i], ref["pts"][g].loc[genes].to_numpy())
        np.testing.assert_array_equal(ranking.pts_rest[i], ref["pts_rest"][g].loc[genes].to_numpy())


def test_all_columns_at_once_match_scanpy_and_chunks_change_no_bit(adata: ad.AnnData, tmp_path: Path) -> None:
    path = write(adata, tmp_path / "pbmc.h5ad")
    info = info_of(path)
    assert info["source"] == "raw/X" and not info["normalise"]
    layout = Layout(columns(adata))
    per_row = info["stored_entries"] / adata.n_obs
    sums = [
        accumulate(path, info | {"chunk_entries": c * per_row}, layout, rows=(0, adata.n_obs), genes=(0, info["n_vars"]))
        for c in (97, 700, 7)
    ]
    assert all((s == sums[0]).all() for s in sums[1:])
    rankings = layout.rankings(sums[0])
    genes = adata.raw.var_names
    for name in ("louvain", "bulk_labels", "random", "level2"):
        assert_matches(rankings[name][0], scanpy_ranking(adata, name), genes)
    within = rankings["level2"][1]
    assert within is not None and within.groups
    parents = {g.split("_")[0] for g in within.groups}
    assert len(parents) >= 2
    for p in sorted(parents):
        sub = adata[adata.obs["louvain"] == p].copy()
        sub.obs["level2"] = sub.obs["level2"].cat.remove_unused_categories()
        ref = scanpy_ranking(sub, "level2")
        rows = [within.groups.index(g) for g in ref["names"].dtype.names]
        part = type(within)(
            *(
                getattr(within, f)[rows] if f != "groups" else [within.groups[r] for r in rows]
                for f in within.__dataclass_fields__
            )
        )
        assert_matches(part, ref, genes)


def test_gene_batches_and_zarr_dense_give_the_same_result(adata: ad.AnnData, tmp_path: Path, monkeypatch) -> None:
    cols = columns(adata)
    _, whole = compute(write(adata, tmp_path / "a.h5ad"), info_of(tmp_path / "a.h5ad"), cols)
    dense = ad.AnnData(X=adata.raw.X.toarray(), obs=adata.obs[["louvain"]], var=pd.DataFrame(index=adata.raw.var_names))
    path = write(dense, tmp_path / "dense.zarr")
    monkeypatch.setattr("scclust.markers_pass.SUMS_BUDGET", 48 * 40 * 100)  # a few genes per batch: several passes
    monkeypatch.setattr("scclust.markers_pass.ENTRIES_PER_CHUNK", 765 * 90)
    _, batched = compute(path, info_of(path), cols)
    for name in whole:
        for field in ("scores", "pvals", "pvals_adj", "logfoldchanges", "pts", "pts_rest"):
            np.testing.assert_array_equal(getattr(whole[name][0], field), getattr(batched[name][0], field))


def same_rankings(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for one, other in zip(a[name], b[name], strict=True):
            assert (one is None) == (other is None)
            if one is not None:
                assert one.groups == other.groups
                for field in ("scores", "pvals", "pvals_adj", "logfoldchanges", "pts", "pts_rest", "means"):
                    np.testing.assert_array_equal(getattr(one, field), getattr(other, field))


@pytest.mark.parametrize("counts", [False, True])
def test_csc_gene_chunks_and_task_parts_change_no_bit(adata: ad.AnnData, tmp_path: Path, counts: bool) -> None:
    """CSC read by gene chunks, CSR by rows; split over tasks (rows, or genes for CSC) and batches: the same bits."""
    if counts:
        c = pbmc_counts()
        a = ad.AnnData(X=c.layers["counts"], obs=adata.obs, var=c.var)
    else:
        a = ad.AnnData(X=adata.raw.X, obs=adata.obs, var=adata.raw.var)
    cols = columns(adata)
    csr = write(a, tmp_path / "csr.h5ad")
    _, whole = compute(csr, info_of(csr), cols)
    b = a.copy()
    b.X = sp.csc_matrix(b.X)
    csc_info = info_of(write(b, tmp_path / "csc.zarr"))
    for path in (tmp_path / "csc.zarr", csr):
        info = info_of(path)
        assert info["encoding"] == ("csc_matrix" if path.suffix == ".zarr" else "csr_matrix")
        assert info["normalise"] == counts
        info |= plan_markers(info, n_obs=a.n_obs, n_columns=len(cols), task_entries=-(-info["stored_entries"] // 3))
        assert len(info["parts"]) == 3
        info |= {"chunk_entries": 5000, "sums_budget": 48 * 60 * 100}  # many chunks, several gene batches
        files = [tmp_path / f"{path.stem}/markers_sums.{k}.npy" for k in (2, 0, 1)]
        files[0].parent.mkdir()
        for f in files:
            write_sums(path, info, cols, int(f.name.split(".")[1]), f)
        same_rankings(compute(path, info, cols, files + [f"{f}.json" for f in files])[1], whole)
        with pytest.raises(ValueError, match="of other columns or labels"):
            compute(path, info, cols[::-1], files)  # columns in another order: sums of other accumulators
        same_rankings(compute(path, info, cols)[1], whole)
        with pytest.raises(ValueError, match="expected parts 0-2"):
            compute(path, info, cols, files[:2])
    bad = b.copy()
    bad.X.data[-1] = np.inf  # beyond what preflight reads: the pass names the genes
    path = write(bad, tmp_path / "bad.zarr")
    with pytest.raises(UserError, match=r"has NaN or infinite values \(genes \d+-\d+\)|held counts in its first rows"):
        compute(path, csc_info | {"chunk_entries": 5000}, cols)


def test_counts_are_log_normalised_as_scanpy_does(tmp_path: Path) -> None:
    counts = pbmc_counts()
    raw = ad.AnnData(X=counts.layers["counts"], obs=counts.obs[["bulk_labels"]], var=counts.var)
    path = write(raw, tmp_path / "counts.h5ad")
    info = info_of(path)
    assert info["source"] == "X" and info["normalise"]
    _, rankings = compute(path, info, [Column("bulk_labels", raw.obs["bulk_labels"].values)])
    assert_matches(rankings["bulk_labels"][0], scanpy_ranking(counts, "bulk_labels", use_raw=False), counts.var_names)


def test_singletons_and_unexpressed_genes(adata: ad.AnnData) -> None:
    """A cluster of one cell: score 0, p-value 1 (scanpy refuses the column); a gene expressed nowhere: score 0."""
    x = sp.csr_matrix(adata.raw.X)
    labels = pd.Categorical(np.where(np.arange(adata.n_obs) == 0, "single", adata.obs["louvain"].astype(str)))
    layout = Layout([Column("c", labels)])
    acc = layout.new_sums((0, x.shape[1]))
    from scclust.markers import accumulate_block

    x = x.tolil()
    x[:, 5] = 0
    x = x.tocsr()
    x.eliminate_zeros()
    assert accumulate_block(x, layout.codes(0, adata.n_obs), (0, x.shape[1]), acc) == 0
    ranking = layout.rankings(acc)["c"][0]
    single = ranking.groups.index("single")
    assert (ranking.scores[single] == 0).all() and (ranking.pvals[single] == 1).all()
    assert np.isfinite(ranking.logfoldchanges[single]).all()
    assert (ranking.scores[:, 5] == 0).all() and (ranking.pvals[:, 5] == 1).all() and (ranking.pts[:, 5] == 0).all()


def test_moments_rest_of_one_cell() -> None:
    group = Moments(np.array([3]), np.array([[1.0]]), np.array([[0.5]]), np.array([[1.0]]))
    rest = Moments(np.array([1]), np.array([[0.0]]), np.array([[0.0]]), np.array([[0.0]]))
    ranking = t_test(group, rest, ["a"])
    assert ranking.scores[0, 0] == 0 and ranking.pvals[0, 0] == 1


def test_outputs_work_with_scanpy(adata: ad.AnnData, tmp_path: Path) -> None:
    path = write(adata, tmp_path / "pbmc.h5ad")
    cols = columns(adata)
    write_markers(path, info_of(path), cols, 5, tmp_path / "m.npz", tmp_path / "m.tsv")
    entries = read_entries(tmp_path / "m.npz")
    assert set(read_entries(tmp_path / "m.npz", "means")) == set(entries)
    assert set(entries) == {
        "rank_genes_groups_louvain", "rank_genes_groups_bulk_labels", "rank_genes_groups_random",
        "rank_genes_groups_level2", "rank_genes_groups_level2_within_parent",
    }  # fmt: skip
    b = adata.copy()
    b.uns.update(entries)
    df = sc.get.rank_genes_groups_df(b, group=None, key="rank_genes_groups_louvain")
    assert len(df) == 5 * adata.obs["louvain"].nunique() and df["pct_nz_group"].notna().all()
    ref = scanpy_ranking(adata.copy(), "louvain")
    assert list(df[df["group"] == "0"]["names"]) == list(ref["names"]["0"][:5])
    tsv = pd.read_csv(tmp_path / "m.tsv", sep="\t")
    assert list(tsv.columns[:13]) == [
        "column", "level", "cluster", "parent", "rank", "gene", "symbol", "score", "logfoldchange", "pval",
        "pval_adj", "pct_in", "pct_out",
    ]  # fmt: skip
    level2 = tsv[tsv["column"] == "level2"]
    assert level2["parent"].notna().all() and level2["rank_within"].notna().any()


@pytest.mark.parametrize(
    ("change", "layer", "symbols", "message"),
    [
        ("scaled", None, None, "negative values (scaled data?)"),
        ("dup", None, None, "gene names of raw/var are not unique"),
        (None, None, "nope", "--gene_symbols 'nope' is not a column of raw/var"),
        (None, "nope", None, "--markers_layer 'nope' is not a layer"),
        ("none", None, None, "has no expression matrix"),
        ("nan", None, None, "NaN or infinite values"),
    ],
)
def test_bad_input_is_one_line(adata: ad.AnnData, tmp_path: Path, change, layer, symbols, message) -> None:
    a = adata.copy()
    if change == "scaled":
        a = ad.AnnData(X=a.X, obs=a.obs[["louvain"]], var=a.var)
    elif change == "dup":
        raw = a.raw.to_adata()
        raw.var_names = [raw.var_names[0]] * 2 + list(raw.var_names[2:])
        a.raw = raw
    elif change == "none":
        a = ad.AnnData(obs=a.obs[["louvain"]])
    elif change == "nan":
        raw = a.raw.to_adata()
        raw.X = raw.X.copy()
        raw.X.data[5] = np.nan
        a.raw = raw
    path = write(a, tmp_path / "bad.h5ad")
    with pytest.raises(UserError) as err:
        info_of(path, layer=layer, gene_symbols=symbols)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"markers": "yes"}, "--markers must be true or false"),
        ({"markers_n_genes": 0}, "--markers_n_genes must be a positive integer"),
        ({"markers_task_entries": "1e8"}, "--markers_task_entries must be a positive integer"),
        ({"markers_task_entries": 0}, "--markers_task_entries must be a positive integer"),
    ],
)
def test_bad_markers_parameters_are_refused(params, message) -> None:
    from scclust.config import config_from_params

    with pytest.raises(UserError, match=message):
        config_from_params({"resolutions": "1.0", **params})
