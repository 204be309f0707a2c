"""The MERGE store builder writes exactly what anndata writes, only faster."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from anndata.io import read_elem, write_elem

from scclust.merge import _StoreBuilder

PARAMS = {
    "algorithm": "leiden",
    "resolution": 0.5,
    "seed": 0,
    "use_gpu": False,
    "parent_column": None,
    "clustering_args": {},
    "versions": {"igraph": "1.0.0", "scanpy": "1.11.5"},
    "resolutions": [0.5, 1.0],
    "embedding": np.arange(6, dtype=np.float32).reshape(3, 2),
}


def _params(i: int) -> dict:
    # same versions and run in every column, values that differ by type only (1 / 1.0 / True / "1")
    return {**PARAMS, "resolution": [0.5, 1.0, 1, True, "1"][i % 5], "n_clusters": i, "level": 1}


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_store_builder_writes_the_same_bytes_as_anndata(tmp_path, zarr_format):
    uns = {f"leiden_{i}": {"params": _params(i)} for i in range(7)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = zarr.open_group(str(tmp_path / "plain"), mode="w", zarr_format=zarr_format)
        write_elem(plain, "uns", uns)
        builder = _StoreBuilder(zarr_format, {})
        builder.write_elem(builder.root, "uns", uns)
        builder.write(tmp_path / "built")
    expected, built = _files(tmp_path / "plain"), _files(tmp_path / "built")
    del expected["zarr.json" if zarr_format == 3 else ".zgroup"], built["zarr.json" if zarr_format == 3 else ".zgroup"]
    assert built == expected
    back = read_elem(zarr.open_group(str(tmp_path / "built"), mode="r")["uns"])
    assert back["leiden_3"]["params"]["resolution"] == 1 and back["leiden_4"]["params"]["resolution"]
    assert back["leiden_6"]["params"]["versions"] == PARAMS["versions"]
