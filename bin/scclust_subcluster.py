#!/usr/bin/env python3
"""Re-cluster one batch of parent clusters, each on its own cells."""

import click

from scclust.cli import config_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.hierarchy import subcluster_batch, write_partial
from scclust.neighbors import rep_store
from scclust.results import read_column


@click.command()
@click.option("--parent", required=True, type=click.Path(exists=True), help="result file holding the parent column")
@click.option(
    "--batch",
    "batch_path",
    required=True,
    type=click.Path(exists=True),
    help="batch file from scclust_split.py",
)
@config_option
@click.option("--input", "input_path", required=True, type=click.Path(exists=True), help="the dataset")
@click.option("--graph-store", required=True, type=click.Path(exists=True), help="store holding the kNN graph")
@click.option("--out", required=True, type=click.Path())
@versions_option
@user_errors
def main(parent: str, batch_path: str, config_path: str, input_path: str, graph_store: str, out: str, versions: str) -> None:
    """Write the batch's child labels."""
    batch = read_json(batch_path)
    cfg = load_config(config_path)
    _, column = read_column(parent, batch["column"])
    partial = subcluster_batch(
        column,
        batch["clusters"],
        level=batch["level"],
        cfg=cfg,
        rep_store=rep_store(input_path, graph_store, cfg.use_rep),
        graph_store=graph_store,
    )
    write_partial(out, partial, batch)
    write_versions(versions, "scclust_subcluster.py")


if __name__ == "__main__":
    main()
