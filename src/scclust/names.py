"""Names an output zarr store cannot hold, found at preflight from the input's metadata alone.

MERGE writes obs anew, and for an .h5ad input also var, obsm, obsp, varm, varp and uns (a .zarr input's other
groups are linked, and their names already live on disk). HDF5 stores a dataframe column name such as ``a/b`` as
an attribute, but in zarr every column is a node whose name is a path component: anndata refuses ``/``, ``.``,
``..``, an empty name and the reserved ``_index``, and a file system refuses a NUL byte, a name longer than 255
bytes, or a node named like the metadata file of its own group. Refusing these at preflight, naming them, keeps
such an input from failing in MERGE after every clustering task.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scclust import io
from scclust.errors import UserError

COPIED_FROM_H5AD = ("var", "obsm", "obsp", "varm", "varp", "uns")
# zarr format 2 and 3 metadata files: a node named like one collides with its group's own file on disk
METADATA_FILES = frozenset({".zattrs", ".zgroup", ".zarray", ".zmetadata", "zarr.json"})
MAX_NAME_BYTES = 255


def why_unstorable(name: str) -> str | None:
    """Why a zarr store cannot hold a node called ``name`` (``None`` when it can)."""
    if name in ("", ".", ".."):
        return "is empty, '.' or '..'"
    if "/" in name:
        return "contains '/'"
    if "\x00" in name:
        return "contains a NUL byte"
    if name in METADATA_FILES:
        return "is the name of a zarr metadata file"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    return None


def element_names(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """``(where, name)`` for every name MERGE writes below an AnnData element: dataframe columns and dict keys."""
    encoding = _attr(node, "encoding-type")
    if encoding == "dataframe":
        index = _attr(node, "_index")
        if index is not None and str(index) != "_index":
            yield f"{where} index", str(index)
        columns = _attr(node, "column-order")  # a numpy array in HDF5, a list in zarr
        for column in [] if columns is None else list(columns):
            column = column.decode() if isinstance(column, bytes) else str(column)
            yield f"{where} column", column
    elif encoding in (None, "dict") and hasattr(node, "keys"):
        for key in node.keys():
            yield f"{where} key", key
            yield from element_names(node[key], f"{where}/{key}")


def check_storable(root: io.Group, path: str | Path, fmt: str) -> None:
    """Raise :class:`UserError` naming the first name of the input that the output store cannot hold."""
    groups = ["obs"] + (list(COPIED_FROM_H5AD) if fmt == "h5ad" else [])
    for group in groups:
        if group not in root:
            continue
        for where, name in element_names(root[group], group):
            reason = why_unstorable(name)
            if reason is None and where.endswith(" column") and name == "_index":
                reason = "is the name anndata reserves for a dataframe's index"
            if reason is not None:
                shown = name if len(name) <= 80 else name[:80] + "..."
                raise UserError(
                    f"input {path}: {where} {shown!r} {reason}, which the output zarr store cannot hold; rename it in "
                    "the input and write it again (an obs column: adata.obs.rename(columns={old: new}))"
                )


def _attr(node: Any, key: str) -> Any:
    value = node.attrs.get(key)
    return value.decode() if isinstance(value, bytes) else value
