"""The small per-task result file: cluster labels of one or more columns, with their complete params."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scclust.errors import UserError


@dataclass
class ColumnResult:
    """One cluster column: name, categorical labels (one per cell, in obs order), params and per-column metrics.

    ``metrics`` are computed by the task that holds the clustered graph (:func:`scclust.metrics.score_columns`).
    """

    name: str
    labels: pd.Categorical
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


def obs_fingerprint(obs_names: pd.Index) -> str:
    """A hash of the cell ids, so that results are never joined onto the wrong cells."""
    digest = hashlib.sha256()
    for name in obs_names:
        digest.update(str(name).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def atomic_path(path: str | Path) -> Path:
    """A temporary sibling of ``path`` to write first and rename onto ``path``."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp-{os.getpid()}")


def write_results(path: str | Path, columns: list[ColumnResult], *, n_obs: int, fingerprint: str) -> None:
    """Write columns to an ``.npz`` file atomically (codes as int32, everything else as JSON)."""
    meta = {
        "format": "scclust-result/1",
        "n_obs": n_obs,
        "obs_fingerprint": fingerprint,
        "columns": [
            {
                "name": c.name,
                "categories": [str(x) for x in c.labels.categories],
                "params": c.params,
                **({"metrics": c.metrics} if c.metrics else {}),
            }
            for c in columns
        ],
    }
    arrays = {f"codes_{i}": np.asarray(c.labels.codes, dtype=np.int32) for i, c in enumerate(columns)}
    for c in columns:
        if len(c.labels) != n_obs:
            raise ValueError(f"column {c.name} has {len(c.labels)} labels for {n_obs} cells")
    tmp = atomic_path(path)
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    tmp.replace(path)


def read_results(path: str | Path) -> tuple[dict[str, Any], list[ColumnResult]]:
    """Read a result file; returns its header (``n_obs``, ``obs_fingerprint``) and the columns."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            columns = [
                ColumnResult(
                    name=col["name"],
                    labels=pd.Categorical.from_codes(data[f"codes_{i}"], categories=col["categories"]),
                    params=col["params"],
                    metrics=col.get("metrics", {}),
                )
                for i, col in enumerate(meta["columns"])
            ]
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"result file {path} is unreadable ({type(err).__name__}); rerun the pipeline with -resume") from None
    return meta, columns


def read_column(path: str | Path, name: str) -> tuple[dict[str, Any], ColumnResult]:
    """Read one named column from a result file."""
    meta, columns = read_results(path)
    for col in columns:
        if col.name == name:
            return meta, col
    raise UserError(f"result file {path} has no column {name!r}; rerun the pipeline with -resume")


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars, tuples and paths so that params survive JSON and zarr attributes."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
