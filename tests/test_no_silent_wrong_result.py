"""Issue 17: no silent wrong result. Each case runs the real pipeline and checks what a user sees.

Chain A (graph as stored): R1 on a copy of pbmc.zarr that has an obs column zarr added after consolidation (case 6),
a plain -resume (MERGE and REPORT cached), then the graph's weights edited in place with the files' mtimes put
back (case 1) and -resume, then a label column edited and -resume; each resumed result against a fresh run on the
same input. Chain B does the same for the embedding with --recompute_neighbors. Refusals (cases 2, 3 and 4) run
into R1's outdir and must leave it and the inputs byte-identical, with no heavy task started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from conftest import run_pipeline, tree_digest

pytestmark = pytest.mark.pipeline

HEAVY = ("NEIGHBORS", "CLUSTER", "STABILITY", "SUBCLUSTER")
ARGS = ("--stability_bootstraps", "0", "--resolutions", "0.5,1.0")


def _processes(output: str, kind: str) -> set[str]:
    """Names of the processes a run reports as ``kind`` (``Submitted`` or ``Cached``)."""
    marker = f"{kind} process > "
    return {line.split(marker)[1].split(" ")[0].rsplit(":", 1)[-1] for line in output.splitlines() if marker in line}


def _edit_in_place(store: Path, element: str, change) -> None:
    """Rewrite one zarr array with ``change(values)``, then put back every file's modification time."""
    files = [p for p in (store / element).rglob("*") if p.is_file()]
    times = {p: p.stat().st_mtime_ns for p in files}
    array = zarr.open_array(str(store / element), mode="r+", use_consolidated=False)
    array[...] = change(array[...])
    for p in files:
        os.utime(p, ns=(times[p], times[p]))
    assert {p: p.stat().st_mtime_ns for p in files} == times


def _results(outdir: Path, dataset: str) -> tuple[str, str]:
    return (outdir / dataset / "clusters.tsv").read_text(), (outdir / dataset / "metrics.tsv").read_text()


def _resume_and_fresh(work: Path, name: str, store: Path, *args: str) -> tuple:
    resumed = run_pipeline(work / "a", "--input", str(store), *args, "-resume", outdir=work / "a" / "out").ok()
    before = _results(work / "a" / "out", "in")
    (work / name).mkdir()
    run_pipeline(work / name, "--input", str(store), *args, outdir=work / name / "out").ok()
    return resumed, before, _results(work / name / "out", "in")


@pytest.fixture(scope="module")
def chain_a(testdata, tmp_path_factory):
    work = tmp_path_factory.mktemp("silent")
    store = work / "in.zarr"
    shutil.copytree(testdata["zarr"], store)
    obs = zarr.open_group(str(store / "obs"), mode="r+", use_consolidated=False)
    extra = obs.create_array("extra", data=(np.arange(700) % 3).astype(np.int64))
    extra.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    obs.attrs["column-order"] = [*obs.attrs["column-order"], "extra"]
    args = (*ARGS, "--label_columns", "bulk_labels,extra")
    (work / "a").mkdir()
    out = {"work": work, "store": store}
    out["R1"] = run_pipeline(work / "a", "--input", str(store), *args, outdir=work / "a" / "out").ok()
    out["R1_results"] = _results(work / "a" / "out", "in")
    out["R1b"] = run_pipeline(work / "a", "--input", str(store), *args, "-resume", outdir=work / "a" / "out").ok()
    out["outdir_digest"] = tree_digest(work / "a" / "out" / "in")

    rng = np.random.default_rng(5)
    _edit_in_place(store, "obsp/connectivities/data", lambda w: (w * rng.uniform(0.2, 3.0, w.shape)).astype(w.dtype))
    out["graph"] = _resume_and_fresh(work, "fresh_graph", store, *args)
    _edit_in_place(store, "obs/bulk_labels/codes", lambda c: np.random.default_rng(6).permutation(c))
    out["labels"] = _resume_and_fresh(work, "fresh_labels", store, *args)
    return out


def test_resume_after_graph_edit_equals_fresh_run(chain_a):
    resumed, got, fresh = chain_a["graph"]
    assert {"PREFLIGHT", "CLUSTER", "MERGE"} <= _processes(resumed.output, "Submitted"), resumed.output[-2000:]
    assert got == fresh
    assert got[0] != chain_a["R1_results"][0], "the reweighted graph should give other clusters"


def test_resume_after_label_edit_equals_fresh_run(chain_a):
    resumed, got, fresh = chain_a["labels"]
    assert "CLUSTER" in _processes(resumed.output, "Submitted")
    assert got == fresh
    before = pd.read_csv(chain_a["work"] / "fresh_graph" / "out" / "in" / "metrics.tsv", sep="\t", index_col=0)
    after = pd.read_csv(chain_a["work"] / "a" / "out" / "in" / "metrics.tsv", sep="\t", index_col=0)
    assert (before["ari_bulk_labels"] != after["ari_bulk_labels"]).all()
    assert (before["ari_extra"] == after["ari_extra"]).all()


def test_plain_resume_reuses_every_task(chain_a):
    output = chain_a["R1b"].output
    assert _processes(output, "Submitted") == {"PUBLISH"}, output[-2000:]
    assert {"PREFLIGHT", "CLUSTER", "MERGE", "REPORT"} <= _processes(output, "Cached")


def test_column_missing_from_consolidated_metadata_is_kept(chain_a):
    assert "consolidated metadata (.zmetadata) does not describe obs, obs/extra" in chain_a["R1"].output
    result = ad.read_zarr(chain_a["work"] / "a" / "out" / "in" / "clustering.zarr")
    np.testing.assert_array_equal(result.obs["extra"].to_numpy(), np.arange(700) % 3)
    metrics = pd.read_csv(chain_a["work"] / "a" / "out" / "in" / "metrics.tsv", sep="\t", index_col=0)
    assert metrics["ari_extra"].notna().all()


def test_resume_after_embedding_edit_equals_fresh_run(testdata, tmp_path):
    store = tmp_path / "in.zarr"
    shutil.copytree(testdata["zarr"], store)
    args = ("--stability_bootstraps", "0", "--recompute_neighbors", "true", "--use_rep", "X_pca")
    (tmp_path / "a").mkdir()
    first = run_pipeline(tmp_path / "a", "--input", str(store), *args, outdir=tmp_path / "a" / "out").ok()
    assert "NEIGHBORS" in _processes(first.output, "Submitted")
    original = _results(tmp_path / "a" / "out", "in")
    _edit_in_place(store, "obsm/X_pca", lambda x: x * np.linspace(0.2, 3.0, x.shape[1], dtype=x.dtype))
    resumed, got, fresh = _resume_and_fresh(tmp_path, "fresh", store, *args)
    assert {"NEIGHBORS", "CLUSTER"} <= _processes(resumed.output, "Submitted")
    assert got == fresh and got[0] != original[0]


def _chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def refusals(chain_a, testdata, tmp_path_factory):
    """Hostile inputs and outdirs, each refused before any heavy task, run into chain A's outdir."""
    work = tmp_path_factory.mktemp("refusals")
    outdir = chain_a["work"] / "a" / "out"
    adata = ad.read_h5ad(testdata["h5ad"])
    adata.obs["all_nan"] = np.nan
    adata.obs["no_values"] = pd.Categorical([None] * adata.n_obs, categories=["x"])
    adata.write_h5ad(work / "labels.h5ad")
    adata.obs["a/b"] = adata.obs["bulk_labels"]
    adata.write_h5ad(work / "names.h5ad")
    inputs = [work / "labels.h5ad", work / "names.h5ad", chain_a["store"]]
    before = [tree_digest(outdir / "in"), *map(tree_digest, inputs)]
    runs = {}

    def run(name, data, *args, out=outdir):
        (work / name).mkdir()
        runs[name] = run_pipeline(work / name, "--input", str(data), *ARGS, *args, outdir=out)

    run("labels", work / "labels.h5ad", "--label_columns", "bulk_labels,all_nan")
    run("names", work / "names.h5ad")
    immutable = {"existing": outdir, "fresh": work / "locked" / "out"}
    immutable["fresh"].parent.mkdir()
    for name, folder in immutable.items():
        locked = folder if name == "existing" else folder.parent
        if not _chattr("+i", locked):
            pytest.skip("chattr +i is not supported on this file system")
        try:
            run(f"outdir_{name}", chain_a["store"], out=folder)
        finally:
            _chattr("-i", locked)
    after = [tree_digest(outdir / "in"), *map(tree_digest, inputs)]
    return {"runs": runs, "unchanged": before == after, "fresh": immutable["fresh"]}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("labels", "--label_columns: obs column 'all_nan' of "),
        ("names", "obs column 'a/b' contains '/', which the output zarr store cannot hold"),
        ("outdir_existing", "/out: cannot be written"),
        ("outdir_fresh", "/out: cannot be written"),
    ],
)
def test_refused_before_any_heavy_task(refusals, name, message):
    run = refusals["runs"][name]
    assert run.returncode != 0
    assert message in run.output, run.output[-3000:]
    assert not _processes(run.output, "Submitted") & set(HEAVY), run.output[-3000:]
    assert "Traceback" not in run.output
    assert refusals["unchanged"], "a refused run changed earlier results or an input"
    assert not refusals["fresh"].exists()


def test_uninformative_columns_refused_at_preflight(tmp_path, testdata):
    """--label_columns and --umap_colors need two distinct values (the pipeline run above shows the user's view)."""
    from scclust.config import config_from_params
    from scclust.dataset import inspect_dataset
    from scclust.errors import UserError

    adata = ad.read_h5ad(testdata["h5ad"])
    adata.obs["no_values"] = pd.Categorical([None] * adata.n_obs, categories=["x"])
    adata.obs["one"] = "a"
    path = tmp_path / "x.h5ad"
    adata.write_h5ad(path)
    for parameter, column in (("label_columns", "no_values"), ("umap_colors", "one")):
        cfg = config_from_params({"input": str(path), "outdir": "o", parameter: column})
        with pytest.raises(UserError, match=f"--{parameter}: obs column '{column}'"):
            inspect_dataset(path, cfg, "x")


@pytest.mark.parametrize(
    ("group", "change", "message"),
    [
        ("obs", lambda a: a.obs.insert(0, "a/b", 1), "obs column 'a/b' contains '/'"),
        ("var", lambda a: a.var.insert(0, ".zattrs", 1), "var column '.zattrs' is the name of a zarr metadata file"),
        ("obsm", lambda a: a.obsm.__setitem__("df", pd.DataFrame({"x/y": 0}, index=a.obs_names)), "obsm/df column 'x/y'"),
        ("uns", lambda a: a.uns.__setitem__("d", {"t": pd.DataFrame({"zarr.json": [1]})}), "uns/d/t column 'zarr.json'"),
        ("obs", lambda a: a.obs.insert(0, "x" * 300, 1), "is longer than 255 bytes"),
    ],
)
def test_names_a_zarr_store_cannot_hold_are_found_in_every_copied_group(testdata, tmp_path, group, change, message):
    from scclust import io
    from scclust.errors import UserError
    from scclust.names import check_storable

    adata = ad.read_h5ad(testdata["h5ad"])
    change(adata)
    adata.write_h5ad(tmp_path / "x.h5ad")
    with io.open_store(tmp_path / "x.h5ad") as root, pytest.raises(UserError, match="output zarr store cannot hold") as err:
        check_storable(root, tmp_path / "x.h5ad", "h5ad")
    assert message in str(err.value)
