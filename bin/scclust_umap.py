#!/usr/bin/env python3
"""UMAP of the clustered graph, saved as a small .npz (embedding + params)."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.neighbors import compute_umap, rep_store, write_umap


@click.command()
@click.option("--graph-store", required=True, type=click.Path(exists=True))
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@config_option
@dataset_option
@click.option("--out", required=True, type=click.Path())
@versions_option
@user_errors
def main(graph_store: str, input_path: str, config_path: str, dataset_path: str, out: str, versions: str) -> None:
    """Write umap.npz."""
    cfg = load_config(config_path)
    coords, params = compute_umap(graph_store, rep_store(input_path, graph_store, cfg.use_rep), cfg, read_json(dataset_path))
    write_umap(out, coords, params)
    write_versions(versions, "scclust_umap.py")


if __name__ == "__main__":
    main()
