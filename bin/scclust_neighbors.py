#!/usr/bin/env python3
"""Recompute the kNN graph (and PCA when the embedding is missing) into a small zarr store."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.neighbors import recompute_graph


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@config_option
@dataset_option
@click.option("--integration-store", type=click.Path(exists=True), help="INTEGRATE's store, if any")
@click.option("--out", required=True, type=click.Path())
@versions_option
@user_errors
def main(input_path: str, config_path: str, dataset_path: str, integration_store: str | None, out: str, versions: str) -> None:
    """Write the graph store."""
    recompute_graph(input_path, load_config(config_path), read_json(dataset_path), out, integration_store)
    write_versions(versions, "scclust_neighbors.py")


if __name__ == "__main__":
    main()
