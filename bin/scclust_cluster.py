#!/usr/bin/env python3
"""Level 1: cluster one graph at several resolutions with one algorithm, building the graph once."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.multires import cluster_resolutions
from scclust.results import write_results


@click.command()
@click.option("--graph-store", required=True, type=click.Path(exists=True), help="store holding the kNN graph")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True), help="the dataset, for the metrics")
@config_option
@dataset_option
@click.option("--algorithm", required=True)
@click.option("--indices", required=True, help="comma list of positions in the run's resolutions")
@click.option("--out", required=True, type=click.Path())
@versions_option
@user_errors
def main(
    graph_store: str,
    input_path: str,
    config_path: str,
    dataset_path: str,
    algorithm: str,
    indices: str,
    out: str,
    versions: str,
) -> None:
    """Write one result file with a column per resolution, each with its metrics."""
    dataset = read_json(dataset_path)
    cfg = load_config(config_path)
    resolutions = [cfg.resolutions[int(i)] for i in indices.split(",")]
    columns = cluster_resolutions(graph_store, cfg, dataset, algorithm, resolutions, input_path)
    write_results(out, columns, n_obs=dataset["n_obs"], fingerprint=dataset["obs_fingerprint"])
    write_versions(versions, "scclust_cluster.py")


if __name__ == "__main__":
    main()
