#!/usr/bin/env python3
"""Join all cluster columns of a dataset into clustering.zarr and clusters.tsv, with metrics.json/metrics.tsv."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.markers_io import read_entries
from scclust.merge import gather_columns, merge_dataset
from scclust.metrics import dataset_metrics, write_metrics
from scclust.neighbors import read_umap


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@config_option
@dataset_option
@click.option("--run-info", required=True, type=click.Path(exists=True), help="pipeline version and command line")
@click.option("--graph-store", type=click.Path(exists=True), help="recomputed graph store, if any")
@click.option("--umap", "umap_path", type=click.Path(exists=True), help="umap.npz, if computed")
@click.option("--column-metrics", type=click.Path(exists=True), help="METRICS' file for levels >= 2, if any")
@click.option("--markers", "markers_path", type=click.Path(exists=True), help="MARKERS' markers.npz, if computed")
@click.option("--stability", "stability_path", type=click.Path(exists=True), help="STABILITY_SUMMARY's stability.json, if any")
@click.option("--out-zarr", required=True, type=click.Path())
@click.option("--out-tsv", required=True, type=click.Path())
@click.option("--out-metrics-json", required=True, type=click.Path())
@click.option("--out-metrics-tsv", required=True, type=click.Path())
@versions_option
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    input_path: str,
    config_path: str,
    dataset_path: str,
    run_info: str,
    graph_store: str | None,
    umap_path: str | None,
    column_metrics: str | None,
    markers_path: str | None,
    stability_path: str | None,
    out_zarr: str,
    out_tsv: str,
    out_metrics_json: str,
    out_metrics_tsv: str,
    versions: str,
    results: tuple[str, ...],
) -> None:
    """Write the merged store."""
    cfg = load_config(config_path)
    dataset = read_json(dataset_path)
    umap = read_umap(umap_path) if umap_path else None
    columns = gather_columns(list(results), dataset, cfg)
    metrics = dataset_metrics(
        cfg, columns, column_metrics=column_metrics, stability_path=stability_path, fingerprint=dataset["obs_fingerprint"]
    )
    merge_dataset(
        input_path=input_path,
        dataset=dataset,
        cfg=cfg,
        columns=columns,
        run_info=read_json(run_info),
        graph_store=graph_store,
        umap=umap,
        out_zarr=out_zarr,
        out_tsv=out_tsv,
        metrics=metrics,
        markers=read_entries(markers_path) if markers_path else None,
    )
    write_metrics(metrics, out_metrics_json, out_metrics_tsv)
    write_versions(versions, "scclust_merge.py")


if __name__ == "__main__":
    main()
