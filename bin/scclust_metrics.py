#!/usr/bin/env python3
"""Metrics of the hierarchy's columns (levels >= 2) on the whole dataset's graph: column_metrics.json.

Level-1 columns carry theirs from CLUSTER; SUBCLUSTER holds only each cluster's subgraph, so deeper levels are
scored here, once per dataset, with the graph read once.
"""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_json, write_versions
from scclust.config import load_config
from scclust.merge import gather_columns
from scclust.metrics import score_columns
from scclust.multires import load_graph
from scclust.neighbors import rep_store


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True), help="the dataset (.h5ad/.zarr)")
@click.option("--graph-store", required=True, type=click.Path(exists=True), help="store holding the clustered graph")
@config_option
@dataset_option
@click.option("--out", required=True, type=click.Path(), help="column_metrics.json to write")
@versions_option
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    input_path: str,
    graph_store: str,
    config_path: str,
    dataset_path: str,
    out: str,
    versions: str,
    results: tuple[str, ...],
) -> None:
    """Score every column that has no metrics yet."""
    cfg = load_config(config_path)
    dataset = read_json(dataset_path)
    columns = [c for c in gather_columns(list(results), dataset, cfg) if not c.metrics]
    score_columns(
        cfg, columns, load_graph(graph_store, cfg, dataset), input_path, rep_store(input_path, graph_store, cfg.use_rep)
    )
    write_json(out, {c.name: c.metrics for c in columns})
    write_versions(versions, "scclust_metrics.py")


if __name__ == "__main__":
    main()
