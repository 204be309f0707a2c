"""Bad inputs and parameters through the real pipeline: each fails with one clear line, touches nothing,
publishes nothing. One run per case (each fails early: --resolutions 0.5, leiden only)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from conftest import run_pipeline, tree_digest
from scclust.testdata import pbmc


def _h5ad(mutate: Callable | None = None) -> Callable[[Path, dict[str, Path]], Path]:
    def make(d: Path, _testdata: dict[str, Path]) -> Path:
        adata = pbmc()
        if mutate is not None:
            changed = mutate(adata)
            adata = adata if changed is None else changed  # an empty AnnData is falsy: no `or`
        path = d / "bad.h5ad"
        adata.write_h5ad(path)
        return path

    return make


def _copy(kind: str) -> Callable[[Path, dict[str, Path]], Path]:
    def make(d: Path, testdata: dict[str, Path]) -> Path:
        target = d / f"bad{testdata[kind].suffix}"
        (shutil.copytree if testdata[kind].is_dir() else shutil.copy)(testdata[kind], target)
        return target

    return make


def _corrupt(d: Path, _testdata: dict[str, Path]) -> Path:
    path = d / "bad.h5ad"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 500)
    return path


def _truncated_zarr(d: Path, testdata: dict[str, Path]) -> Path:
    path = _copy("zarr")(d, testdata)
    chunks = [p for p in (path / "obsp" / "connectivities" / "data").iterdir() if not p.name.startswith(".")]
    assert chunks
    for chunk in chunks:
        blob = chunk.read_bytes()
        chunk.write_bytes(blob[: len(blob) // 3])
    return path


def _not_anndata(d: Path, _testdata: dict[str, Path]) -> Path:
    path = d / "bad.h5ad"
    with h5py.File(path, "w") as fh:
        fh["matrix"] = np.arange(12).reshape(3, 4)
    return path


def _empty_zarr_dir(d: Path, _testdata: dict[str, Path]) -> Path:
    path = d / "bad.zarr"
    path.mkdir()
    return path


def _missing(d: Path, _testdata: dict[str, Path]) -> Path:
    return d / "bad.h5ad"


def _dup_names(adata):
    adata.obs_names = ["c1", "c1", *adata.obs_names[2:]]


def _nan_rep(adata):
    adata.obsm["X_pca"][10, 3] = np.nan


def _no_graph(adata):
    del adata.obsp["connectivities"], adata.obsp["distances"]
    del adata.uns["neighbors"]


def _existing_column(adata):
    adata.obs["leiden_0.5_1"] = "old"


def _weights(value: float) -> Callable:
    def mutate(adata):
        adata.obsp["connectivities"].data[7] = value

    return mutate


def _no_edges(adata):
    adata.obsp["connectivities"] = sp.csr_matrix(adata.obsp["connectivities"].shape, dtype=np.float32)


def _damaged_obs_column(d: Path, testdata: dict[str, Path]) -> Path:
    path = _copy("zarr")(d, testdata)
    column = path / "obs" / "n_genes"
    chunks = [p for p in column.iterdir() if not p.name.startswith(".")]
    assert chunks
    chunks[0].write_bytes(b"garbage")
    return path


# id: (make input, extra args, substrings that one output line must hold, whether the error comes from a task)
CASES: dict[str, tuple[Callable, list[str], list[str], bool]] = {
    "corrupt_file": (_corrupt, [], ["not a readable .h5ad (HDF5) file"], True),
    "truncated_zarr": (_truncated_zarr, [], ["cannot read obsp/connectivities", "damaged"], True),
    "empty_dataset": (_h5ad(lambda a: a[:0].copy()), [], ["has 0 cell(s)"], True),
    "one_cell": (
        _h5ad(lambda a: a[:1].copy()),
        [],
        ["has 1 cell(s); clustering needs at least 2 cells"],
        True,
    ),
    "nan_in_embedding": (
        _h5ad(_nan_rep),
        ["--recompute_neighbors"],
        ["obsm/X_pca contains NaN or infinite values"],
        True,
    ),
    "n_neighbors_too_large": (
        _h5ad(),
        ["--recompute_neighbors", "--n_neighbors", "700"],
        ["--n_neighbors 700 must be smaller than the number of cells (700)"],
        True,
    ),
    "unknown_obsm_key": (
        _h5ad(),
        ["--recompute_neighbors", "--use_rep", "X_nope"],
        ["--use_rep 'X_nope' is not in obsm"],
        True,
    ),
    "duplicated_obs_names": (_h5ad(_dup_names), [], ["obs names are not unique", "'c1'"], True),
    "missing_graph": (
        _h5ad(_no_graph),
        [],
        ["no kNN graph under --neighbors_key 'neighbors'", "--recompute_neighbors"],
        True,
    ),
    "existing_column": (
        _h5ad(_existing_column),
        [],
        ["obs already has column 'leiden_0.5_1'", "--overwrite"],
        True,
    ),
    "not_anndata": (_not_anndata, [], ["not an AnnData store (no 'obs' group)"], True),
    "empty_zarr_dir": (_empty_zarr_dir, [], ["bad.zarr: not a readable zarr store"], True),
    "missing_file": (_missing, [], ["no such file or directory"], False),
    "resolution_zero": (
        _copy("h5ad"),
        ["--resolutions", "0"],
        ["--resolutions", "must be a positive number"],
        True,
    ),
    "resolution_non_numeric": (
        _copy("h5ad"),
        ["--resolutions", "abc"],
        ['--resolutions: "abc" is invalid'],
        True,
    ),
    "resolution_duplicate": (_copy("h5ad"), ["--resolutions", "0.5,0.5"], ["repeats resolution 0.5"], True),
    "unknown_algorithm": (_copy("zarr"), ["--algorithm", "leidn"], ['--algorithm: "leidn" is invalid'], True),
    "typo_parameter": (
        _copy("h5ad"),
        ["--resolution", "0.5"],
        ["unknown parameter --resolution (did you mean --resolutions?)"],
        True,
    ),
    "nan_weights": (_h5ad(_weights(np.nan)), [], ["obsp/connectivities has NaN or infinite weights"], True),
    "negative_weights": (_h5ad(_weights(-1.0)), [], ["obsp/connectivities has negative weights"], True),
    "no_edges": (_h5ad(_no_edges), [], ["obsp/connectivities has no edges", "--recompute_neighbors"], True),
    "damaged_obs_column": (_damaged_obs_column, [], ["cannot read obs", "damaged"], True),
    "resolutions_per_task_zero": (_copy("h5ad"), ["--resolutions_per_task", "0"], ["--resolutions_per_task"], True),
    "resolutions_per_task_text": (_copy("h5ad"), ["--resolutions_per_task", "abc"], ["--resolutions_per_task"], True),
    "hierarchy_key": (_copy("h5ad"), ["--hierarchy", "{a: 0.1}"], ["--hierarchy", "level 'a' is not an integer"], True),
    "hierarchy_fraction": (_copy("h5ad"), ["--hierarchy", "2.5"], ["--hierarchy"], True),
    "max_cpus_zero": (_copy("h5ad"), ["--max_cpus", "0"], ["--max_cpus: 0 is less than the minimum of 1"], True),
    "max_memory_text": (_copy("h5ad"), ["--max_memory", "abc"], ['--max_memory: "abc" is invalid'], True),
    "max_memory_above_machine": (
        _copy("h5ad"),
        ["--max_memory", "4096.GB"],
        ["--max_memory 4096.GB is more than this machine's", "pass --max_memory"],
        True,
    ),
    "wrong_type": (
        _copy("h5ad"),
        ["--n_neighbors", "abc"],
        ['--n_neighbors must be an integer, got "abc"'],
        True,
    ),
    "clustering_args_wrong_type": (
        _copy("h5ad"),
        ["--clustering_args", '{"beta": "0.01"}'],
        ["--clustering_args beta must be a number > 0, got '0.01'", """pass e.g. --clustering_args '{"beta": 0.01}'"""],
        True,
    ),
    "clustering_args_conflict": (
        _copy("h5ad"),
        ["--clustering_args", '{"n_iterations": 5}', "--n_iterations", "3"],
        ["--clustering_args n_iterations 5 and --n_iterations 3 disagree"],
        True,
    ),
    "seed_too_large": (_copy("h5ad"), ["--seed", "4294967296"], ["--seed", "maximum of 4294967295"], True),
    "level_seed_too_large": (
        _copy("zarr"),
        ["--hierarchy", "{2: {seed: 4294967296}}"],
        ["--hierarchy level 2 seed must be an integer from 0 to 4294967295"],
        True,
    ),
    "label_column_typo": (
        _copy("h5ad"),
        ["--label_columns", "batch,bulk_label"],
        ["--label_columns: 'bulk_label' is not an obs column", "did you mean 'bulk_labels'?"],
        True,
    ),
}


@pytest.mark.pipeline
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case: str, tmp_path: Path, testdata: dict[str, Path]) -> None:
    make, args, needles, from_task = CASES[case]
    data = tmp_path / "data"
    data.mkdir()
    path = make(data, testdata)
    before = tree_digest(data)
    if "--resolutions" not in args and "--resolution" not in args:
        args = [*args, "--resolutions", "0.5"]
    run = run_pipeline(tmp_path, "--input", str(path), *args)
    assert run.returncode != 0, run.output[-3000:]
    lines = [line.strip() for line in run.output.splitlines() if all(n in line for n in needles)]
    assert lines, f"no output line holds {needles}:\n{run.output[-3000:]}"
    if from_task:
        # the task's one-line message, printed by Nextflow under 'Command error:'
        assert any(line.startswith("ERROR: ") for line in lines), lines
        assert "Traceback" not in run.output, run.output[-3000:]
        # and no workflow error after it, which Nextflow would print last (a list of no PREFLIGHT results, once)
        assert "Cannot invoke method" not in run.output, run.output[-3000:]
        # the file as the user named it, not Nextflow's staged input/ link
        for line in lines:
            assert "input/bad" not in line, line
            assert path.name not in line or str(path) in line, line
    assert "LEVEL1:CLUSTER" not in run.output, "clustering started before the error was found"
    assert tree_digest(data) == before, "the failed run changed its input"
    assert not (run.outdir / "bad" / "clustering.zarr").exists()
    assert not list(run.outdir.glob("*/clustering.zarr")), "something was published for a failed dataset"
