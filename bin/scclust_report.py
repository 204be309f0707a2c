#!/usr/bin/env python3
"""One dataset's report: report.html (self-contained), plots/*.png, MultiQC files and summary.json."""

from pathlib import Path

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, write_json, write_versions
from scclust.config import load_config
from scclust.markers_io import read_entries
from scclust.merge import gather_columns
from scclust.metrics import dataset_metrics
from scclust.report import ReportData, build_report, read_shown


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@config_option
@dataset_option
@click.option("--params", "params_path", required=True, type=click.Path(exists=True), help="every parameter of the run")
@click.option("--run-info", required=True, type=click.Path(exists=True), help="pipeline version and command line")
@click.option("--column-metrics", type=click.Path(exists=True), help="METRICS' file for levels >= 2, if any")
@click.option("--stability", "stability_path", type=click.Path(exists=True), help="STABILITY_SUMMARY's stability.json, if any")
@click.option("--markers", "markers_path", type=click.Path(exists=True), help="MARKERS' markers.npz, if computed")
@click.option("--umap", "umap_path", type=click.Path(exists=True), help="umap.npz; else obsm/X_umap of the input, if any")
@click.option("--outdir", default=".", show_default=True, type=click.Path(file_okay=False))
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    input_path: str,
    config_path: str,
    dataset_path: str,
    params_path: str,
    run_info: str,
    column_metrics: str | None,
    stability_path: str | None,
    umap_path: str | None,
    markers_path: str | None,
    outdir: str,
    results: tuple[str, ...],
) -> None:
    """Write the report of one dataset into OUTDIR."""
    cfg = load_config(config_path)
    dataset = read_json(dataset_path)
    obs, coords, earlier = read_shown(input_path, cfg, umap_path)
    columns = gather_columns(list(results), dataset, cfg)
    # the same document MERGE computes from the same files, so the report does not wait for MERGE
    metrics = dataset_metrics(
        cfg, columns, column_metrics=column_metrics, stability_path=stability_path, fingerprint=dataset["obs_fingerprint"]
    )
    data = ReportData(
        dataset=dataset,
        cfg=cfg,
        params=read_json(params_path),
        run_info=read_json(run_info),
        columns=columns,
        metrics=metrics,
        coords=coords,
        obs=obs,
        earlier=earlier,
    )
    if markers_path:
        data.markers = read_entries(markers_path)
        data.markers_means = read_entries(markers_path, "means")
        data.symbols = read_entries(markers_path, "symbols")
    Path(outdir).mkdir(parents=True, exist_ok=True)
    write_json(Path(outdir) / "summary.json", build_report(data, outdir))
    write_versions(Path(outdir) / "versions.yml", "scclust_report.py")


if __name__ == "__main__":
    main()
