#!/usr/bin/env python3
"""Per-column metrics of one dataset (and stability, when bootstraps ran): metrics.json and metrics.tsv."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.merge import gather_columns
from scclust.metrics import compute_metrics, read_inputs, write_metrics
from scclust.multires import load_graph
from scclust.neighbors import rep_store


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True), help="the dataset (.h5ad/.zarr)")
@click.option("--graph-store", required=True, type=click.Path(exists=True), help="store holding the clustered graph")
@config_option
@dataset_option
@click.option("--bootstrap", "bootstraps", multiple=True, type=click.Path(exists=True), help="a STABILITY file (repeat)")
@click.option("--out-json", required=True, type=click.Path())
@click.option("--out-tsv", required=True, type=click.Path())
@versions_option
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    input_path: str,
    graph_store: str,
    config_path: str,
    dataset_path: str,
    bootstraps: tuple[str, ...],
    out_json: str,
    out_tsv: str,
    versions: str,
    results: tuple[str, ...],
) -> None:
    """Compute every column's metrics."""
    cfg = load_config(config_path)
    dataset = read_json(dataset_path)
    columns = gather_columns(list(results), dataset, cfg)
    rep, labels = read_inputs(input_path, rep_store(input_path, graph_store, cfg.use_rep), cfg, dataset["n_obs"])
    doc = compute_metrics(
        cfg,
        columns,
        load_graph(graph_store, cfg, dataset),
        rep=rep,
        labels=labels,
        bootstrap_files=list(bootstraps),
        fingerprint=dataset["obs_fingerprint"],
    )
    write_metrics(doc, out_json, out_tsv)
    write_versions(versions, "scclust_metrics.py")


if __name__ == "__main__":
    main()
