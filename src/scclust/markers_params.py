"""The MARKERS stage's parameters: ``--markers``, ``--markers_layer``, ``--markers_n_genes``, ``--gene_symbols``, ...

... and ``--markers_task_entries``, how a large matrix is split over MARKERS_SUMS tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scclust.errors import UserError


def markers_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The markers fields of :class:`scclust.config.Config`, validated."""
    on = params.get("markers", True)
    if on not in (True, False, "true", "false"):
        raise UserError(f"--markers must be true or false, got {on!r}")
    n_genes = params.get("markers_n_genes", 100)
    if isinstance(n_genes, bool) or not str(n_genes).isdigit() or int(n_genes) < 1:
        raise UserError(f"--markers_n_genes must be a positive integer (genes listed per cluster), got {n_genes!r}; e.g. 100")
    per_task = params.get("markers_task_entries", 250_000_000)
    if isinstance(per_task, bool) or not str(per_task).isdigit() or int(per_task) < 1:
        raise UserError(
            f"--markers_task_entries must be a positive integer (stored matrix values per MARKERS_SUMS task), got "
            f"{per_task!r}; e.g. 250000000"
        )
    return {
        "markers": on in (True, "true"),
        "markers_layer": str(params["markers_layer"]) if params.get("markers_layer") else None,
        "markers_n_genes": int(n_genes),
        "markers_task_entries": int(per_task),
        "gene_symbols": str(params["gene_symbols"]) if params.get("gene_symbols") else None,
    }
