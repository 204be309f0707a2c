"""Input layouts the pipeline must accept, checked on the library functions (fast, no Nextflow).

``make_variant`` builds the layouts; the pipeline tests reuse it to run a few of them end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import dask.array as da
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

from conftest import run_pipeline, tree_digest
from scclust import io, neighbors
from scclust.clustering import ClusterSpec, GraphClusterer
from scclust.config import config_from_params
from scclust.dataset import inspect_dataset
from scclust.errors import UserError
from scclust.testdata import pbmc

N_OBS = 700


def make_variant(
    path: Path,
    *,
    x: str = "dense",
    key: str = "neighbors",
    distances: bool = True,
    dtype: Any = np.float64,
    graph: bool = True,
    embedding: bool = True,
    umap: bool = True,
    numeric_names: bool = False,
    extra_obs: bool = False,
    zarr_format: int = 2,
    n_obs: int | None = None,
) -> ad.AnnData:
    """Write a pbmc variant to ``path`` (.h5ad or .zarr) and return the AnnData written.

    ``x``: dense, csr, csc, dask or none. ``key``: the neighbors key; another key stores the graph as
    ``obsp[key + '_conn']`` (and ``key + '_dist'``) named in ``uns[key]``, as scanpy's ``key_added`` does.
    """
    adata = pbmc()
    if n_obs is not None:
        adata = adata[:n_obs].copy()
    dense = np.asarray(adata.X, dtype=np.float32)
    adata.X = {
        "dense": dense,
        "csr": sp.csr_matrix(dense),
        "csc": sp.csc_matrix(dense),
        "dask": da.from_array(dense, chunks=(200, 300)),
        "none": None,
    }[x]
    conn = adata.obsp["connectivities"].astype(dtype)
    dist = adata.obsp["distances"].astype(dtype)
    params = dict(adata.uns["neighbors"]["params"])
    del adata.obsp["connectivities"], adata.obsp["distances"], adata.uns["neighbors"]
    if graph:
        if key == "neighbors":
            adata.obsp["connectivities"] = conn
            if distances:
                adata.obsp["distances"] = dist
            adata.uns["neighbors"] = {"params": params}
        else:
            entry = {"connectivities_key": f"{key}_conn", "params": params}
            adata.obsp[f"{key}_conn"] = conn
            if distances:
                adata.obsp[f"{key}_dist"] = dist
                entry["distances_key"] = f"{key}_dist"
            adata.uns[key] = entry
    if not embedding:
        del adata.obsm["X_pca"]
        adata.varm.clear()
        adata.uns.pop("pca", None)
    if not umap:
        del adata.obsm["X_umap"]
    if numeric_names:
        adata.obs_names = [str(i) for i in range(adata.n_obs)]
    if extra_obs:
        rng = np.random.default_rng(1)
        adata.obs["flag"] = rng.random(adata.n_obs) < 0.3
        adata.obs["note"] = np.where(rng.random(adata.n_obs) < 0.5, "x", "y").astype(object)
        with_nan = rng.random(adata.n_obs)
        with_nan[::7] = np.nan
        adata.obs["score_nan"] = with_nan
    path = Path(path)
    if path.suffix == ".h5ad":
        adata.write_h5ad(path)
    else:
        old = ad.settings.zarr_write_format
        ad.settings.zarr_write_format = zarr_format
        try:
            adata.write_zarr(path)
        finally:
            ad.settings.zarr_write_format = old
    return adata


def cfg_for(**params: Any):
    """A config for these stores, many of which have no expression matrix (MARKERS: tests/test_markers.py)."""
    return config_from_params({"resolutions": "0.5", "algorithm": "leiden", "markers": False, **params})


def scanpy_leiden(conn: sp.spmatrix, resolution: float, key: str = "neighbors", **kwargs: Any) -> np.ndarray:
    """The reference call of issue 4 on a graph."""
    import scanpy as sc

    a = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(conn.shape[0])]))
    ckey = "connectivities" if key == "neighbors" else f"{key}_conn"
    dkey = "distances" if key == "neighbors" else f"{key}_dist"
    a.obsp[ckey] = sp.csr_matrix(conn)
    a.obsp[dkey] = sp.csr_matrix(conn)
    a.uns[key] = {"connectivities_key": ckey, "distances_key": dkey, "params": {"method": "umap"}}
    sc.tl.leiden(a, resolution=resolution, flavor="igraph", n_iterations=2, random_state=0, neighbors_key=key, **kwargs)
    return a.obs["leiden"].astype(str).to_numpy()


# --- matrices: np.matrix, dask, layouts ------------------------------------------------------------------

DENSE = np.arange(30, dtype=np.float32).reshape(6, 5) % 4


def _layouts() -> dict[str, Any]:
    return {
        "dense": DENSE.copy(),
        "matrix": np.asmatrix(DENSE),
        "csr": sp.csr_matrix(DENSE),
        "csc": sp.csc_matrix(DENSE),
        "csr_array": sp.csr_array(DENSE),
        "coo": sp.coo_matrix(DENSE),
        "dask_dense": da.from_array(DENSE, chunks=(3, 5)),
        "dask_matrix": da.from_array(DENSE, chunks=(3, 5)).map_blocks(np.asmatrix),
        "dask_csr": da.from_array(DENSE, chunks=(3, 5)).map_blocks(sp.csr_matrix),
        "int": DENSE.astype(np.int64),
    }


@pytest.mark.parametrize("layout", list(_layouts()))
def test_as_csr_any_layout(layout: str) -> None:
    out = io.as_csr(_layouts()[layout])
    assert isinstance(out, sp.csr_matrix)
    assert not isinstance(out, np.matrix)
    assert np.issubdtype(out.dtype, np.floating)
    np.testing.assert_array_equal(out.toarray(), DENSE)


@pytest.mark.parametrize("layout", list(_layouts()))
def test_as_array_never_matrix(layout: str) -> None:
    out = neighbors.as_array(_layouts()[layout])
    assert not isinstance(out, np.matrix)
    if sp.issparse(out):
        assert isinstance(out, sp.csr_matrix)
        out = out.toarray()
    else:
        assert type(out) is np.ndarray
    np.testing.assert_array_equal(np.asarray(out), DENSE)


@pytest.fixture(scope="module")
def x_dense() -> np.ndarray:
    return np.asarray(pbmc().X, dtype=np.float32)


def test_compute_pca_reproducible_and_layout_independent(x_dense: np.ndarray) -> None:
    ref, params = neighbors.compute_pca(x_dense, 20, seed=0)
    assert type(ref) is np.ndarray and ref.shape == (N_OBS, 20)
    assert params == {"n_comps": 20, "svd_solver": "arpack", "random_state": 0}
    again, _ = neighbors.compute_pca(x_dense.copy(), 20, seed=0)
    np.testing.assert_array_equal(again, ref)  # bit-identical on rerun
    layouts = {
        "matrix": np.asmatrix(x_dense),
        "dask": da.from_array(x_dense, chunks=(350, 400)),
        "csr": sp.csr_matrix(x_dense),
        "csc": sp.csc_matrix(x_dense),
        "dask_csr": da.from_array(x_dense, chunks=(350, 765)).map_blocks(sp.csr_matrix),
    }
    for name, x in layouts.items():
        emb, _ = neighbors.compute_pca(x, 20, seed=0)
        assert type(emb) is np.ndarray, name
        np.testing.assert_array_equal(neighbors.compute_pca(x, 20, seed=0)[0], emb, err_msg=name)
        # same subspace whatever the layout (signs of components may differ between solvers)
        np.testing.assert_allclose(np.abs(emb[:, :5]), np.abs(ref[:, :5]), atol=2e-3, rtol=1e-3, err_msg=name)


def test_compute_pca_caps_components() -> None:
    x = np.random.default_rng(0).random((8, 5))
    emb, params = neighbors.compute_pca(x, 50, seed=0)
    assert emb.shape == (8, 4) and params["n_comps"] == 4
    with pytest.raises(UserError, match="cannot compute PCA"):
        neighbors.compute_pca(np.ones((1, 5)), 50, seed=0)


# --- stores: formats, keys, dtypes -----------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_formats_read_back(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "v.zarr"
    written = make_variant(path, zarr_format=zarr_format, numeric_names=True, extra_obs=True)
    assert zarr.open_group(str(path), mode="r").metadata.zarr_format == zarr_format
    with io.open_store(path) as root:
        names = io.read_obs_names(root, path)
        assert list(names) == [str(i) for i in range(N_OBS)]
        assert io.n_obs(root) == N_OBS
        obs = io.read_obs(root, path)
        pd.testing.assert_series_equal(obs["flag"], written.obs["flag"], check_index=False)
        pd.testing.assert_series_equal(obs["score_nan"], written.obs["score_nan"], check_index=False)
        assert obs["score_nan"].isna().sum() == written.obs["score_nan"].isna().sum() > 0
        assert isinstance(obs["bulk_labels"].dtype, pd.CategoricalDtype)
        conn = io.read_matrix(root, "connectivities", path)
        rep = io.read_rep(root, "X_pca", path, rows=np.array([0, 5, 9]))
    assert (conn != written.obsp["connectivities"]).nnz == 0
    np.testing.assert_array_equal(rep, written.obsm["X_pca"][[0, 5, 9]])


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
@pytest.mark.parametrize("distances", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_default_neighbors_key(tmp_path: Path, suffix: str, distances: bool, dtype: Any) -> None:
    path = tmp_path / f"v{suffix}"
    written = make_variant(path, key="knn", distances=distances, dtype=dtype)
    with io.open_store(path) as root:
        conn_key, dist_key = io.graph_keys(root, "knn")
        assert (conn_key, dist_key) == ("knn_conn", "knn_dist" if distances else None)
        conn = io.read_matrix(root, conn_key, path)
        with pytest.raises(UserError, match="no kNN graph under --neighbors_key 'neighbors'"):
            io.graph_keys(root, "neighbors")
    assert isinstance(conn, sp.csr_matrix) and conn.dtype == dtype
    info = inspect_dataset(path, cfg_for(neighbors_key="knn"), "v")
    assert info["graph"]["connectivities_key"] == "knn_conn"
    assert info["graph"]["distances_key"] == ("knn_dist" if distances else None)
    assert info["format"] == ("h5ad" if suffix == ".h5ad" else "zarr") and info["n_obs"] == N_OBS
    assert info["compute_pca"] is False
    # labels: the library's clusterer equals scanpy on the same graph, float32 or float64
    labels = GraphClusterer(conn).labels(ClusterSpec("leiden", 0.5))
    np.testing.assert_array_equal(np.asarray(labels), scanpy_leiden(written.obsp["knn_conn"], 0.5, "knn"))


def test_float32_and_float64_graph_same_labels(tmp_path: Path) -> None:
    labels = []
    for dtype in (np.float32, np.float64):
        path = tmp_path / f"{np.dtype(dtype).name}.zarr"
        make_variant(path, dtype=dtype)
        with io.open_store(path) as root:
            labels.append(
                np.asarray(GraphClusterer(io.read_matrix(root, "connectivities", path)).labels(ClusterSpec("leiden", 0.5)))
            )
    assert len(set(labels[0])) > 2
    np.testing.assert_array_equal(labels[0], labels[1])


def test_dense_obsp_graph_read_as_csr(tmp_path: Path) -> None:
    path = tmp_path / "dense_graph.h5ad"
    adata = make_variant(tmp_path / "base.h5ad")
    adata.obsp["connectivities"] = adata.obsp["connectivities"].toarray()
    adata.write_h5ad(path)
    with io.open_store(path) as root:
        conn = io.read_matrix(root, "connectivities", path)
    assert isinstance(conn, sp.csr_matrix)
    np.testing.assert_array_equal(conn.toarray(), adata.obsp["connectivities"])
    assert inspect_dataset(path, cfg_for(), "d")["graph"]["connectivities_key"] == "connectivities"


@pytest.mark.parametrize("x", ["dense", "csr", "csc", "dask", "none"])
@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_x_layouts_inspect_and_read(tmp_path: Path, x: str, suffix: str) -> None:
    path = tmp_path / f"v{suffix}"
    written = make_variant(path, x=x)
    info = inspect_dataset(path, cfg_for(), "v")
    assert info["graph"]["connectivities_key"] == "connectivities" and info["rep_in_input"] is True
    with io.open_store(path) as root:
        if x == "none":
            assert "X" not in root
            return
        data = neighbors.as_array(neighbors.read_x(root, None, path))
    assert not isinstance(data, np.matrix)
    assert isinstance(data, sp.csr_matrix) if x in ("csr", "csc") else type(data) is np.ndarray
    expected = np.asarray(written.X.compute() if x == "dask" else written.X.toarray() if sp.issparse(written.X) else written.X)
    np.testing.assert_array_equal(data.toarray() if sp.issparse(data) else data, expected)


def test_recompute_without_graph_or_embedding(tmp_path: Path) -> None:
    path = tmp_path / "bare.zarr"
    make_variant(path, x="csc", graph=False, embedding=False, umap=False, zarr_format=3)
    with pytest.raises(UserError, match="no kNN graph under --neighbors_key 'neighbors'"):
        inspect_dataset(path, cfg_for(), "bare")
    cfg = cfg_for(recompute_neighbors=True, n_pcs=20)
    info = inspect_dataset(path, cfg, "bare")
    assert info["compute_pca"] is True and info["graph"]["pca_source"] == "X" and info["rep_in_input"] is False
    outs = []
    for i in range(2):
        out = tmp_path / f"graph{i}.zarr"
        neighbors.recompute_graph(path, cfg, info, out)
        outs.append(ad.read_zarr(out))
    a, b = outs
    assert a.obsm["X_pca"].shape == (N_OBS, 20)
    np.testing.assert_array_equal(a.obsm["X_pca"], b.obsm["X_pca"])
    assert (a.obsp["connectivities"] != b.obsp["connectivities"]).nnz == 0
    assert a.uns["pca"]["params"]["source"] == "X" and int(a.uns["pca"]["params"]["n_comps"]) == 20
    # PCA from a layer
    cfg_layer = cfg_for(recompute_neighbors=True, pca_layer="counts")
    with pytest.raises(UserError, match="--pca_layer 'counts' is not in layers"):
        inspect_dataset(path, cfg_layer, "bare")


def test_no_x_no_embedding_recompute_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "nothing.h5ad"
    make_variant(path, x="none", graph=False, embedding=False)
    with pytest.raises(UserError, match="has no X to compute PCA from"):
        inspect_dataset(path, cfg_for(recompute_neighbors=True), "n")


def test_pca_layer_used(tmp_path: Path) -> None:
    path = tmp_path / "layer.h5ad"
    adata = make_variant(tmp_path / "base.h5ad", x="none", graph=False, embedding=False)
    adata.layers["scaled"] = sp.csr_matrix(np.asarray(pbmc().X))
    adata.write_h5ad(path)
    cfg = cfg_for(recompute_neighbors=True, pca_layer="scaled", n_pcs=10)
    info = inspect_dataset(path, cfg, "l")
    assert info["graph"]["pca_source"] == "layers/scaled"
    with io.open_store(path) as root:
        emb, _ = neighbors.compute_pca(neighbors.read_x(root, "scaled", path), 10, 0)
    ref, _ = neighbors.compute_pca(sp.csr_matrix(np.asarray(pbmc().X)), 10, 0)
    np.testing.assert_array_equal(emb, ref)


def test_backed_h5ad_readable_while_open(tmp_path: Path) -> None:
    path = tmp_path / "backed.h5ad"
    make_variant(path, x="csr")
    backed = ad.read_h5ad(path, backed="r")
    try:
        assert backed.isbacked
        info = inspect_dataset(path, cfg_for(recompute_neighbors=True), "b")
        assert info["n_obs"] == N_OBS
        with io.open_store(path) as root:
            conn = io.read_matrix(root, "connectivities", path)
        assert (conn != backed.obsp["connectivities"]).nnz == 0
    finally:
        backed.file.close()
    # an h5ad written from a backed AnnData (X stays on disk in the source) is a normal input too
    backed = ad.read_h5ad(path, backed="r")
    copy = tmp_path / "from_backed.h5ad"
    backed.write_h5ad(copy)
    backed.file.close()
    with h5py.File(copy, "r") as fh:
        assert "X" in fh
    assert inspect_dataset(copy, cfg_for(), "c")["n_obs"] == N_OBS


def test_existing_column_needs_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "clash.zarr"
    adata = make_variant(tmp_path / "base.h5ad")
    adata.obs["leiden_0.5_1"] = "old"
    adata.write_zarr(path)
    with pytest.raises(UserError, match=r"obs already has column 'leiden_0\.5_1'; pass --overwrite"):
        inspect_dataset(path, cfg_for(), "c")
    assert inspect_dataset(path, cfg_for(overwrite=True), "c")["columns"] == ["leiden_0.5_1"]


def test_umap_colors_with_odd_column_name(tmp_path: Path) -> None:
    path = tmp_path / "odd.zarr"
    adata = make_variant(tmp_path / "base.h5ad")
    adata.obs["it's a col"] = adata.obs["bulk_labels"]
    adata.write_zarr(path)
    assert inspect_dataset(path, cfg_for(umap_colors="it's a col"), "o")["umap_in_input"] is True
    with pytest.raises(UserError, match="--umap_colors: 'nope' is not an obs column"):
        inspect_dataset(path, cfg_for(umap_colors="nope"), "o")


@pytest.mark.parametrize(
    ("mutate", "params", "message"),
    [
        ("one_cell", {}, "has 1 cell(s); clustering needs at least 2 cells"),
        ("empty", {}, "has 0 cell(s)"),
        ("dup_names", {}, "obs names are not unique"),
        ("nan_rep", {"recompute_neighbors": True}, "obsm/X_pca contains NaN or infinite values"),
        ("none", {"recompute_neighbors": True, "n_neighbors": 700}, "--n_neighbors 700 must be smaller than"),
        ("none", {"recompute_neighbors": True, "use_rep": "X_foo"}, "--use_rep 'X_foo' is not in obsm"),
        ("none", {"neighbors_key": "nokey"}, "no kNN graph under --neighbors_key 'nokey'"),
    ],
)
def test_bad_datasets_library(tmp_path: Path, mutate: str, params: dict[str, Any], message: str) -> None:
    adata = pbmc()
    if mutate == "one_cell":
        adata = adata[:1].copy()
    elif mutate == "empty":
        adata = adata[:0].copy()
    elif mutate == "dup_names":
        adata.obs_names = ["c"] * 3 + list(adata.obs_names[3:])
    elif mutate == "nan_rep":
        adata.obsm["X_pca"][4, 2] = np.nan
    path = tmp_path / "bad.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(UserError) as err:
        inspect_dataset(path, cfg_for(**params), "bad")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_not_anndata_and_corrupt(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.h5ad"
    corrupt.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(UserError, match=r"not a readable \.h5ad"):
        inspect_dataset(corrupt, cfg_for(), "c")
    plain = tmp_path / "plain.h5ad"
    with h5py.File(plain, "w") as fh:
        fh["data"] = np.arange(3)
    with pytest.raises(UserError, match="not an AnnData store"):
        inspect_dataset(plain, cfg_for(), "p")
    with pytest.raises(UserError, match="no such file or directory"):
        inspect_dataset(tmp_path / "missing.zarr", cfg_for(), "m")


# --- end to end: a few variants through the real pipeline, one run each for many assertions --------------


def read_tsv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return table.set_index(table.columns[0])


@pytest.mark.pipeline
def test_pipeline_layout_variants(tmp_path: Path) -> None:
    """zarr v3 + CSC X + float32 graph without distances + numeric obs names; h5ad + dense X; zarr v2, no X.

    All under the non-default key ``knn``; labels must equal scanpy's leiden on each stored graph.
    """
    data = tmp_path / "data"
    data.mkdir()
    specs = {
        "v3_csc": (
            "v3_csc.zarr",
            {"x": "csc", "zarr_format": 3, "distances": False, "dtype": np.float32, "numeric_names": True},
        ),
        "h5_dense": ("h5_dense.h5ad", {"x": "dense"}),
        "v2_nox": ("v2_nox.zarr", {"x": "none", "zarr_format": 2, "dtype": np.float32}),
    }
    written = {id_: make_variant(data / name, key="knn", umap=False, extra_obs=True, **kw) for id_, (name, kw) in specs.items()}
    # an input that already has the column we write: replaced because of --overwrite
    clash = written["h5_dense"].copy()
    clash.obs["leiden_0.5_1"] = "old"
    clash.write_h5ad(data / "clash.h5ad")
    written["clash"] = clash
    specs["clash"] = ("clash.h5ad", {})
    sheet = data / "samplesheet.csv"
    sheet.write_text("id,path\n" + "".join(f"{id_},{name}\n" for id_, (name, _) in specs.items()))
    before = tree_digest(data)
    run = run_pipeline(tmp_path, "--input", str(sheet), "--neighbors_key", "knn", "--resolutions", "0.5", "--overwrite").ok()
    assert tree_digest(data) == before, "the pipeline changed its inputs"
    for id_, adata in written.items():
        out = run.outdir / id_
        labels = read_tsv(out / "clusters.tsv")
        assert list(labels.index) == list(adata.obs_names), id_
        expected = scanpy_leiden(adata.obsp["knn_conn"], 0.5, "knn")
        np.testing.assert_array_equal(labels["leiden_0.5_1"].to_numpy(), expected, err_msg=id_)
        result = ad.read_zarr(out / "clustering.zarr")
        assert list(result.obs_names) == list(adata.obs_names), id_
        np.testing.assert_array_equal(result.obs["leiden_0.5_1"].astype(str).to_numpy(), expected, err_msg=id_)
        # the input's obs survives with its types: categorical, bool, string, NaN
        assert isinstance(result.obs["bulk_labels"].dtype, pd.CategoricalDtype), id_
        pd.testing.assert_series_equal(result.obs["flag"], adata.obs["flag"], check_names=False)
        pd.testing.assert_series_equal(result.obs["score_nan"], adata.obs["score_nan"], check_names=False)
        assert list(result.obs["note"].astype(str)) == list(adata.obs["note"]), id_
        assert (result.obsp["knn_conn"] != adata.obsp["knn_conn"]).nnz == 0, id_
        assert result.uns["leiden_0.5_1"]["params"]["neighbors_key"] == "knn"
        if id_ == "v3_csc":
            assert zarr.open_group(str(out / "clustering.zarr"), mode="r").metadata.zarr_format == 3
            assert sp.issparse(result.X) and (sp.csc_matrix(result.X) != adata.X).nnz == 0
        if id_ == "v2_nox":
            assert result.X is None


@pytest.mark.pipeline
def test_pipeline_recompute_pca_reproducible(tmp_path: Path) -> None:
    """No graph, no embedding, --recompute_neighbors: PCA from X; the same data twice, identical output."""
    data = tmp_path / "data"
    data.mkdir()
    adata = make_variant(data / "bare.zarr", x="csr", graph=False, embedding=False, umap=False)
    make_variant(data / "bare.h5ad", x="dense", graph=False, embedding=False, umap=False)
    sheet = data / "samplesheet.csv"
    sheet.write_text("id,path\nrun1,bare.zarr\nrun2,bare.zarr\nrun3,bare.h5ad\n")
    before = tree_digest(data)
    run = run_pipeline(tmp_path, "--input", str(sheet), "--recompute_neighbors", "--n_pcs", "20", "--resolutions", "0.5").ok()
    assert tree_digest(data) == before
    results = {i: ad.read_zarr(run.outdir / i / "clustering.zarr") for i in ("run1", "run2", "run3")}
    r1, r2, r3 = results.values()
    assert r1.obsm["X_pca"].shape == (N_OBS, 20)
    np.testing.assert_array_equal(r1.obsm["X_pca"], r2.obsm["X_pca"])
    assert (r1.obsp["connectivities"] != r2.obsp["connectivities"]).nnz == 0
    np.testing.assert_array_equal(r1.obs["leiden_0.5_1"].to_numpy(), r2.obs["leiden_0.5_1"].to_numpy())
    # the PCA is the library's, with the run's seed
    direct, _ = neighbors.compute_pca(adata.X, 20, 0)
    np.testing.assert_allclose(r1.obsm["X_pca"], direct, atol=1e-5)
    assert int(r1.uns["pca"]["params"]["n_comps"]) == 20 and r1.uns["pca"]["params"]["source"] == "X"
    # labels are scanpy's leiden on the recomputed graph
    for res in results.values():
        np.testing.assert_array_equal(
            res.obs["leiden_0.5_1"].astype(str).to_numpy(), scanpy_leiden(res.obsp["connectivities"], 0.5)
        )
    # dense h5ad X and CSR zarr X give the same principal subspace
    np.testing.assert_allclose(np.abs(r3.obsm["X_pca"][:, :5]), np.abs(r1.obsm["X_pca"][:, :5]), atol=2e-3, rtol=1e-3)


def test_dense_zarr_graph_without_its_zero_chunks_is_not_damage(tmp_path: Path) -> None:
    """zarr leaves out chunks that hold only zeros: a dense kNN graph has many, and is still whole."""
    path, n = tmp_path / "dense.zarr", 3000
    band = sp.diags([np.ones(n - abs(d)) for d in range(-5, 6) if d], [d for d in range(-5, 6) if d], format="csr")
    adata = ad.AnnData(
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]),
        obsm={"X_pca": np.random.default_rng(0).normal(size=(n, 10))},
        obsp={"connectivities": band.toarray(), "distances": band.toarray()},
        uns={"neighbors": {"connectivities_key": "connectivities", "distances_key": "distances", "params": {"n_neighbors": 10}}},
    )
    adata.write_zarr(path)
    node = zarr.open_group(path, mode="r")["obsp"]["connectivities"]
    assert node.nchunks_initialized < node.nchunks, "the test needs a graph with left-out zero chunks"
    assert inspect_dataset(path, cfg_for(), "t")["n_obs"] == node.shape[0]


@pytest.mark.parametrize("part", ["indices", "indptr", "data"])
def test_zarr_missing_chunks_fail_not_zero_filled(tmp_path: Path, part: str) -> None:
    """zarr reads a missing chunk as zeros: a truncated copy must fail, not yield a silently wrong graph."""
    path = tmp_path / "truncated.zarr"
    make_variant(path)
    chunks = [p for p in (path / "obsp" / "connectivities" / part).iterdir() if not p.name.startswith(".")]
    assert chunks
    chunks[0].unlink()
    with io.open_store(path) as root, pytest.raises(UserError, match=r"obsp/connectivities is incomplete"):
        io.read_matrix(root, "connectivities", path)
    with pytest.raises(UserError, match=r"obsp/connectivities is incomplete"):
        inspect_dataset(path, cfg_for(), "t")
