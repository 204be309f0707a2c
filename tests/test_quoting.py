"""Values that reach task scripts are quoted: ids, file names, column names, JSON arguments."""

from __future__ import annotations

import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import run_pipeline, tree_digest
from test_inputs import read_tsv, scanpy_leiden

ODD_COLUMN = "it's a col"


def _no_file_named(root: Path, name: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.name == name]


@pytest.mark.pipeline
def test_hostile_ids_file_names_columns_and_json(tmp_path: Path, testdata: dict[str, Path]) -> None:
    """One run: shell-active ids, a file name with spaces, quotes and $(...), an obs column with a space and a
    quote in --umap_colors, and --clustering_args JSON. Nothing may execute; everything must work."""
    marker, marker2 = tmp_path / "pwned1", tmp_path / "pwned2"
    data = tmp_path / "data"
    data.mkdir()
    adata = ad.read_h5ad(testdata["h5ad"])
    adata.obs[ODD_COLUMN] = adata.obs["bulk_labels"]
    odd_zarr = data / "my data's $(touch pwned3) `touch pwned4`.zarr"
    adata.write_zarr(odd_zarr)
    odd_h5ad = data / 'x "q" $(touch pwned5).h5ad'
    adata.write_h5ad(odd_h5ad)
    # ids without '/', so they are accepted and reach every script; they reference markers via the environment
    id1 = 'a;touch "$SCCLUST_MARKER1"'
    id2 = "$(touch $SCCLUST_MARKER2)"
    sheet = data / "samplesheet.csv"
    # paths unquoted: main.nf's splitCsv has no quote option, so CSV-quoted fields keep their quotes
    sheet.write_text(f"id,path\n{id1},{odd_zarr.name}\n{id2},{odd_h5ad.name}\n")
    before = tree_digest(data)
    run = run_pipeline(
        tmp_path,
        "--input",
        str(sheet),
        "--resolutions",
        "0.5",
        "--clustering_args",
        '{"beta": 0.01}',
        "--umap_colors",
        f"bulk_labels,{ODD_COLUMN}",
        env={"SCCLUST_MARKER1": str(marker), "SCCLUST_MARKER2": str(marker2)},
    )
    assert not marker.exists() and not marker2.exists(), "an id was executed by a shell"
    for name in ("pwned3", "pwned4", "pwned5"):
        assert not _no_file_named(tmp_path, name), f"a file name was executed by a shell ({name})"
    run.ok()
    assert tree_digest(data) == before
    ref = ad.read_h5ad(testdata["h5ad"])
    expected = scanpy_leiden(ref.obsp["connectivities"], 0.5, beta=0.01)
    for id_ in (id1, id2):
        out = run.outdir / id_
        assert out.is_dir(), f"outputs for {id_!r} not under <outdir>/<id>/"
        labels = read_tsv(out / "clusters.tsv")["leiden_0.5_1"].to_numpy()
        np.testing.assert_array_equal(labels, expected, err_msg=id_)
        result = ad.read_zarr(out / "clustering.zarr")
        assert result.uns["leiden_0.5_1"]["params"]["clustering_args"] == {"beta": 0.01}
        plots = sorted(p.name for p in (out / "plots").glob("*.png"))
        assert "umap_leiden_0.5_1.png" in plots and "umap_bulk_labels.png" in plots, plots
        assert any(re.fullmatch(r"umap_it_s_a_col-[0-9a-f]{8}\.png", name) for name in plots), plots
        pd.testing.assert_series_equal(result.obs[ODD_COLUMN].astype(str), adata.obs[ODD_COLUMN].astype(str), check_names=False)


@pytest.mark.pipeline
def test_id_with_slash_rejected_and_not_executed(tmp_path: Path, testdata: dict[str, Path]) -> None:
    marker = tmp_path / "pwned"
    sheet = tmp_path / "samplesheet.csv"
    sheet.write_text(f"id,path\na;touch {marker},{testdata['zarr']}\n")
    run = run_pipeline(tmp_path, "--input", str(sheet), "--resolutions", "0.5")
    assert run.returncode != 0
    assert "must not contain '/'" in run.output
    assert not marker.exists()
    assert not list(run.outdir.glob("*/clustering.zarr"))
