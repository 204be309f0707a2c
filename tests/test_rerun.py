"""The second run (issue 9): a reused outdir, a result store fed back in (same and other outdir), a refused clash,
a run that fails late, and a moved outdir. Nothing may be lost, mixed or left half-written.

One chain of real runs over both test datasets (an .h5ad-born and a .zarr-born store), leiden only:
  R1 fresh inputs, 0.5 -> A;  R2 fresh inputs, 1.0 -> A (replaces R1's folders);  R3 A's stores fed back, 2.0 -> A;
  R4 A's stores fed back, 0.5 -> B;  R5 B's stores, 0.5 again without --overwrite (refused);  R6 B's stores, 0.2,
  MERGE killed (fails late);  then B moved to C.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from conftest import run_pipeline, tree_digest

pytestmark = pytest.mark.pipeline

IDS = ("pbmc_h5ad", "pbmc_zarr")


def _sheet(path: Path, stores: Path) -> Path:
    path.write_text("id,path\n" + "".join(f"{i},{stores / i / 'clustering.zarr'}\n" for i in IDS))
    return path


def _run(work: Path, name: str, sheet: Path, outdir: Path, resolution: str, *extra: str):
    (work / name).mkdir()
    return run_pipeline(work / name, "--input", str(sheet), "--resolutions", resolution, *extra, outdir=outdir)


def _params(store: Path, column: str) -> dict:
    return ad.read_zarr(store).uns[column]["params"]


def _results(outdir: Path) -> str:
    """Digest of the dataset folders (pipeline_info is the run log: every run, failed or not, adds its reports)."""
    return "".join(tree_digest(outdir / i) for i in IDS) + str(sorted(p.name for p in outdir.iterdir()))


def _links(store: Path) -> list[tuple[Path, Path]]:
    return [(p, p.resolve()) for p in store.rglob("*") if p.is_symlink()]


@pytest.fixture(scope="module")
def chain(testdata, tmp_path_factory):
    work = tmp_path_factory.mktemp("rerun")
    a, b = work / "A", work / "B"
    runs, snapshots = {}, {}
    runs["R1"] = _run(work, "r1", testdata["samplesheet"], a, "0.5").ok()
    runs["R2"] = _run(work, "r2", testdata["samplesheet"], a, "1.0").ok()
    snapshots["R2"] = {i: _params(a / i / "clustering.zarr", "leiden_1.0_1") for i in IDS}
    runs["R3"] = _run(work, "r3", _sheet(work / "a.csv", a), a, "2.0").ok()
    snapshots["A"] = _results(a)
    runs["R4"] = _run(work, "r4", _sheet(work / "a2.csv", a), b, "0.5").ok()
    snapshots["A_after_R4"] = _results(a)
    snapshots["B"] = _results(b)
    runs["R5"] = _run(work, "r5", _sheet(work / "b.csv", b), b, "0.5")
    snapshots["B_after_R5"] = _results(b)
    snapshots["B_info"] = tree_digest(b / "pipeline_info" / "params.json") + tree_digest(
        b / "pipeline_info" / "scclust_config.json"
    )
    fail = work / "fail.config"
    # the local executor kills a task past its time limit: MERGE then fails after all clustering has run
    fail.write_text("process { withName: 'MERGE' { time = '1ms'; maxRetries = 0 } }\n")
    runs["R6"] = _run(work, "r6", _sheet(work / "b2.csv", b), b, "0.2", "-c", str(fail))
    snapshots["B_after_R6"] = _results(b)
    snapshots["B_info_after_R6"] = tree_digest(b / "pipeline_info" / "params.json") + tree_digest(
        b / "pipeline_info" / "scclust_config.json"
    )
    return {"work": work, "A": a, "B": b, "runs": runs, "snapshots": snapshots}


def test_reused_outdir_holds_only_the_new_run(chain, testdata):
    # R2 replaced R1's folders: nothing of resolution 0.5 is left in A after R2 (R3 then built on R2's stores)
    for i in IDS:
        obs = ad.read_zarr(chain["A"] / i / "clustering.zarr").obs
        assert "leiden_0.5_1" not in obs.columns
        table = pd.read_csv(chain["A"] / i / "clusters.tsv", sep="\t", index_col=0, dtype=str, keep_default_na=False)
        assert list(table.columns) == ["leiden_1.0_1", "leiden_2.0_1"]
        umaps = sorted(p.name for p in (chain["A"] / i / "plots").iterdir() if p.name.startswith("umap_"))
        assert umaps == ["umap_leiden_1.0_1.png", "umap_leiden_2.0_1.png"]
        assert "leiden_1.0_1" in (chain["A"] / i / "report.html").read_text()
    assert not [p for p in chain["A"].iterdir() if p.name.startswith(".")], "publish left temporary folders"


def _assert_earlier_data_kept(store: Path, dataset: str, chain: dict, original: ad.AnnData) -> None:
    """Earlier columns with their params, obsm, obsp, var, obs and (zarr-born) X read back unchanged."""
    merged = ad.read_zarr(store)
    assert _params(store, "leiden_1.0_1") == chain["snapshots"]["R2"][dataset]
    for key in original.obsm:
        np.testing.assert_array_equal(merged.obsm[key], original.obsm[key])
    for key in original.obsp:
        assert (merged.obsp[key] != original.obsp[key]).nnz == 0
    pd.testing.assert_frame_equal(merged.var, original.var)
    for column in original.obs.columns:
        assert (merged.obs[column].astype(str) == original.obs[column].astype(str)).all()
    # every link resolves, and none points into an outdir (whose stores a later run replaces)
    for link, target in _links(store):
        assert target.exists(), link
        assert chain["A"] not in target.parents and chain["B"] not in target.parents, f"{link} -> {target}"
    if dataset == "pbmc_zarr":
        np.testing.assert_array_equal(np.asarray(merged.X), np.asarray(original.X))
    else:
        assert not (store / "X").exists()


@pytest.mark.parametrize("dataset", IDS)
def test_store_fed_back_into_same_outdir_keeps_everything(chain, testdata, dataset):
    store = chain["A"] / dataset / "clustering.zarr"
    merged = ad.read_zarr(store)
    assert list(merged.uns["scclust"]["columns"]) == ["leiden_1.0_1", "leiden_2.0_1"]
    assert float(merged.uns["leiden_2.0_1"]["params"]["resolution"]) == 2.0
    _assert_earlier_data_kept(store, dataset, chain, ad.read_h5ad(testdata["h5ad"]))
    if dataset == "pbmc_zarr":
        assert (store / "X").resolve() == (testdata["zarr"] / "X").resolve()


@pytest.mark.parametrize("dataset", IDS)
def test_store_fed_back_into_another_outdir(chain, testdata, dataset):
    assert chain["snapshots"]["A_after_R4"] == chain["snapshots"]["A"], "R4 changed the outdir it read from"
    store = chain["B"] / dataset / "clustering.zarr"
    assert list(ad.read_zarr(store).uns["scclust"]["columns"]) == ["leiden_1.0_1", "leiden_2.0_1", "leiden_0.5_1"]
    _assert_earlier_data_kept(store, dataset, chain, ad.read_h5ad(testdata["h5ad"]))


def test_existing_column_refused_before_clustering(chain):
    run = chain["runs"]["R5"]
    assert run.returncode != 0
    assert "obs already has column 'leiden_0.5_1'" in run.output and "--overwrite" in run.output
    assert "LEVEL1:CLUSTER" not in run.output
    assert chain["snapshots"]["B_after_R5"] == chain["snapshots"]["B"]


def test_late_failure_leaves_published_results_as_they_were(chain):
    run = chain["runs"]["R6"]
    assert run.returncode != 0
    assert "LEVEL1:CLUSTER" in run.output and "MERGE" in run.output, run.output[-3000:]
    assert chain["snapshots"]["B_after_R6"] == chain["snapshots"]["B"]
    # the parameters in pipeline_info stay those of the results they sit beside
    assert chain["snapshots"]["B_info_after_R6"] == chain["snapshots"]["B_info"]
    assert not [p for p in chain["B"].iterdir() if p.name.startswith(".")]


def test_moved_outdir_still_reads(chain, testdata, tmp_path):
    moved = tmp_path / "C"
    shutil.copytree(chain["B"], moved, symlinks=True)  # what `mv` or `rsync -a` to another disk keeps
    for dataset in IDS:
        store = moved / dataset / "clustering.zarr"
        merged = ad.read_zarr(store)
        assert "leiden_2.0_1" in merged.obs.columns
        assert merged.obsm["X_pca"].shape == (700, 50)
        zarr.open_group(str(store), mode="r")
    x = ad.read_zarr(moved / "pbmc_zarr" / "clustering.zarr").X
    np.testing.assert_array_equal(np.asarray(x), np.asarray(ad.read_h5ad(testdata["h5ad"]).X))
