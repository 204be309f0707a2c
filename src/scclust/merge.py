"""Join every cluster column of a dataset into one zarr store, without copying X.

For a .zarr input the store links (symbolic links to absolute paths) every group it does not change to the
input, and writes only obs, uns and any group that gained entries. For an .h5ad input, whose groups cannot be
linked into, it holds everything but X, layers and raw (see README).

A link always points at real data outside any scclust result store: a result store fed back in as input (to add
resolutions) is replaced when the new one is published, so whatever lives in it is copied, and links found in it
are followed to the data they name. A result store is marked by :data:`STORE_MARK` in its root attributes, which
anndata does not carry over when a user re-saves the data (their copy is then an ordinary input).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr
from anndata.io import read_elem, write_elem

from scclust import io
from scclust.config import Config
from scclust.errors import UserError
from scclust.metrics import uns_metrics
from scclust.results import ColumnResult, atomic_path, read_results, to_jsonable

H5AD_COPIED = ("var", "obsm", "obsp", "varm", "varp")
STORE_MARK = "scclust_result_store"


RECOMMENDATION_KEYS = ("recommended", "recommendation_rule", "recommendation_basis", "recommendation_certainty")


def gather_columns(result_files: list[str | Path], dataset: dict[str, Any], cfg: Config) -> list[ColumnResult]:
    """Read every result file of a dataset, check it belongs to these cells, order columns as the config does."""
    by_name: dict[str, ColumnResult] = {}
    for path in result_files:
        meta, columns = read_results(path)
        if meta["obs_fingerprint"] != dataset["obs_fingerprint"]:
            raise UserError(f"result {path} was computed on other cells than {dataset['input']}; rerun without -resume")
        for col in columns:
            if col.name in by_name:
                raise UserError(f"column {col.name!r} was computed twice; check --resolutions and --hierarchy")
            by_name[col.name] = col
    missing = [c for c in cfg.columns() if c not in by_name]
    if missing:
        raise UserError(f"no result for column {missing[0]!r}; rerun the pipeline with -resume")
    return [by_name[c] for c in cfg.columns()]


class _StoreBuilder:
    """Builds the new store in memory, then writes its files in one pass and adds links to the input.

    Every params leaf is a small zarr array; anndata spends ~3 ms creating one in memory and ~8 ms through
    zarr's local store. So the store is built in a zarr memory store and written with plain file writes, and a
    scalar that was encoded once (the package versions, the graph, the run are the same in every column's
    params) is copied file by file instead of encoded again. Together this made MERGE several times faster
    (docs/benchmarks.md).
    """

    def __init__(self, zarr_format: int, attrs: dict[str, Any]) -> None:
        self._files: dict[str, Any] = {}
        self.root = zarr.open_group(zarr.storage.MemoryStore(self._files), mode="w", zarr_format=zarr_format)
        self.root.attrs.update(attrs)
        self._links: list[tuple[str, Path]] = []
        self._encoded: dict[tuple[str, str], tuple[str, list[str]]] = {}

    def write_elem(self, group: zarr.Group, key: str, value: Any) -> None:
        """Write like ``anndata.io.write_elem``, but encode each distinct scalar once and copy its files after that."""
        if isinstance(value, dict):
            write_elem(group, key, {})
            sub = group[key]
            for sub_key, sub_value in value.items():
                self.write_elem(sub, str(sub_key), sub_value)  # type: ignore[arg-type]
            return
        if not isinstance(value, str | int | float | bool):
            write_elem(group, key, value)
            return
        path = f"{group.path}/{key}".lstrip("/")
        signature = (type(value).__name__, repr(value))
        if signature not in self._encoded:
            n_before = len(self._files)
            write_elem(group, key, value)
            # dicts keep insertion order: the files this write created are the last ones
            created = itertools.islice(reversed(self._files), len(self._files) - n_before)
            self._encoded[signature] = (path, [f[len(path) :] for f in created])
            return
        source, suffixes = self._encoded[signature]
        for suffix in suffixes:
            self._files[path + suffix] = self._files[source + suffix]

    def link(self, name: str, target: Path) -> None:
        """Make ``name`` (a path inside the store) a symbolic link to ``target``."""
        self._links.append((name, target))

    def group_with_links(self, name: str, source: Path | None, new: dict[str, Any]) -> None:
        """Group ``name``: links to the source group's children plus freshly written ``new`` entries."""
        group = self.root.require_group(name)
        if source is not None and source.exists():
            src_group = zarr.open_group(str(source), mode="r", use_consolidated=False)
            group.attrs.update(dict(src_group.attrs))
            for child in src_group.keys():
                if child not in new:
                    self.link(f"{name}/{child}", source / child)
        else:
            group.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
        for key, value in new.items():
            self.write_elem(group, key, value)

    def write(self, directory: Path) -> None:
        """Write every file, then the links (or copies, see :func:`place`), under ``directory``."""
        for key, buffer in self._files.items():
            path = directory / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.to_bytes())
        for name, target in self._links:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            place(directory / name, target)


def place(dest: Path, source: Path) -> None:
    """Make ``dest`` a link to the real data behind ``source``, or a copy where that data lies in a result store."""
    real = source.resolve()
    if not in_result_store(real):
        os.symlink(real, dest)
    elif real.is_dir():
        dest.mkdir()
        for child in real.iterdir():
            place(dest / child.name, child)
    else:
        shutil.copyfile(real, dest)


def in_result_store(path: Path) -> bool:
    """Whether ``path`` lies inside a store that scclust wrote (and may replace on a later run)."""
    return any(_is_result_store(str(p)) for p in (path, *path.parents))


@functools.lru_cache(maxsize=4096)
def _is_result_store(directory: str) -> bool:
    d = Path(directory)
    for meta, in_attributes in ((d / ".zattrs", False), (d / "zarr.json", True)):
        if meta.is_file():
            try:
                attrs = json.loads(meta.read_text())
            except (OSError, ValueError):
                return False
            attrs = attrs.get("attributes", {}) if in_attributes else attrs
            return isinstance(attrs, dict) and STORE_MARK in attrs
    return False


def merge_dataset(
    *,
    input_path: str | Path,
    dataset: dict[str, Any],
    cfg: Config,
    columns: list[ColumnResult],
    run_info: dict[str, Any],
    graph_store: str | Path | None,
    umap: tuple[np.ndarray, dict[str, Any]] | None,
    out_zarr: str | Path,
    out_tsv: str | Path,
    metrics: dict[str, Any] | None = None,
    markers: dict[str, Any] | None = None,
) -> None:
    """Write ``clustering.zarr`` and ``clusters.tsv`` for one dataset (each atomically).

    ``metrics`` (metrics.json) adds ``uns[column]['metrics']`` and ``uns['scclust']['recommended']``; ``markers``
    (MARKERS' entries, scanpy's ``rank_genes_groups`` layout) are added to uns under their keys.
    """
    src = Path(input_path).resolve()
    with io.open_store(src) as root:
        obs = io.read_obs(root, src)
        fmt = 3 if isinstance(root, zarr.Group) and root.metadata.zarr_format == 3 else 2
        earlier = io.read_uns_entry(root, "scclust")
        earlier = earlier if isinstance(earlier, dict) else {}
        # an earlier run's recommendation chose among other columns: only this run's (if any) is kept
        earlier = {k: v for k, v in earlier.items() if k not in RECOMMENDATION_KEYS}
        uns_new, obsp_new, obsm_new = _new_entries(columns, run_info, cfg, graph_store, umap, metrics)
        uns_new |= markers or {}
        attrs = dict(root.attrs) or {"encoding-type": "anndata", "encoding-version": "0.1.0"}
        out = _StoreBuilder(fmt, {**attrs, STORE_MARK: run_info.get("version", "unknown")})
        for col in columns:
            obs[col.name] = col.labels
        # columns of earlier runs (a result store fed back in) stay listed, and stay in clusters.tsv
        names = [c for c in earlier.get("columns", []) if c in obs.columns and c not in uns_new["scclust"]["columns"]]
        names += uns_new["scclust"]["columns"]
        uns_new["scclust"] = {**earlier, **uns_new["scclust"], "columns": names}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_elem(out.root, "obs", obs)
            if dataset["format"] == "zarr":
                for child in root.keys():
                    if child == "obs":
                        continue
                    new = {"uns": uns_new, "obsp": obsp_new, "obsm": obsm_new}.get(child)
                    if new:
                        out.group_with_links(child, src / child, new)
                    else:
                        out.link(child, src / child)
                for child, new in (("uns", uns_new), ("obsp", obsp_new), ("obsm", obsm_new)):
                    if new and child not in root:
                        out.group_with_links(child, None, new)
            else:
                for child in H5AD_COPIED:
                    value = read_elem(root[child]) if child in root else {}
                    if child == "obsp":
                        value = {**value, **obsp_new}
                    if child == "obsm":
                        value = {**value, **obsm_new}
                    out.write_elem(out.root, child, value)
                uns = read_elem(root["uns"]) if "uns" in root else {}
                out.write_elem(out.root, "uns", {**uns, **uns_new})
    tmp = atomic_path(out_zarr)
    if tmp.exists():
        shutil.rmtree(tmp)
    out.write(tmp)
    zarr.consolidate_metadata(str(tmp))
    final = Path(out_zarr)
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    write_tsv(obs[names], out_tsv)


def _new_entries(
    columns: list[ColumnResult],
    run_info: dict[str, Any],
    cfg: Config,
    graph_store: str | Path | None,
    umap: tuple[np.ndarray, dict[str, Any]] | None,
    metrics: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    uns: dict[str, Any] = {c.name: {"params": to_jsonable({**c.params, "pipeline": run_info})} for c in columns}
    for name, entry in (metrics or {}).get("columns", {}).items():
        uns[name]["metrics"] = uns_metrics(entry)
    obsp: dict[str, Any] = {}
    obsm: dict[str, Any] = {}
    integration = None
    if graph_store is not None:
        with io.open_store(graph_store) as groot:
            for key in groot["obsp"].keys():
                obsp[key] = io.read_matrix(groot, key, graph_store)
            uns[cfg.neighbors_key] = read_elem(groot["uns"][cfg.neighbors_key])
            if "pca" in groot["uns"]:
                uns["pca"] = read_elem(groot["uns"]["pca"])
            integration = read_elem(groot["uns"]["integration"]) if "integration" in groot["uns"] else None
            # the graph store holds only embeddings computed in this run (PCA, integration)
            for key in io.obsm_keys(groot):
                obsm[key] = read_elem(groot["obsm"][key])
    if umap is not None:
        obsm["X_umap"] = umap[0]
        uns["umap"] = {"params": umap[1]}
    uns["scclust"] = to_jsonable({"columns": [c.name for c in columns], "pipeline": run_info})
    if metrics and "recommended" in metrics:
        uns["scclust"].update({key: metrics[key] for key in RECOMMENDATION_KEYS})
    if integration is not None:
        uns["scclust"]["integration"] = integration
    return uns, obsp, obsm


def write_tsv(clusters: pd.DataFrame, out_tsv: str | Path) -> None:
    """Cell id plus one column per clustering, tab-separated, for R and spreadsheets (README: how to read it)."""
    table = clusters.astype(str).rename_axis("cell_id")
    tmp = atomic_path(out_tsv)
    table.to_csv(tmp, sep="\t")
    tmp.replace(out_tsv)
