#!/usr/bin/env python3
"""One bootstrap: cluster the subgraph induced by a seeded subsample at several level-1 resolutions."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.multires import load_graph
from scclust.stability import cluster_bootstrap, write_bootstrap


@click.command()
@click.option("--graph-store", required=True, type=click.Path(exists=True), help="store holding the clustered kNN graph")
@config_option
@dataset_option
@click.option("--algorithm", required=True)
@click.option("--indices", required=True, help="comma list of positions in the run's resolutions")
@click.option("--bootstrap", required=True, type=int, help="bootstrap number (0-based); seeds the subsample")
@click.option("--out", required=True, type=click.Path())
@versions_option
@user_errors
def main(
    graph_store: str, config_path: str, dataset_path: str, algorithm: str, indices: str, bootstrap: int, out: str, versions: str
) -> None:
    """Write the bootstrap's sampled cells and one membership per resolution."""
    dataset = read_json(dataset_path)
    cfg = load_config(config_path)
    resolutions = [cfg.resolutions[int(i)] for i in indices.split(",")]
    result = cluster_bootstrap(load_graph(graph_store, cfg, dataset), cfg, algorithm, resolutions, bootstrap)
    write_bootstrap(out, result, fingerprint=dataset["obs_fingerprint"])
    write_versions(versions, "scclust_stability.py")


if __name__ == "__main__":
    main()
