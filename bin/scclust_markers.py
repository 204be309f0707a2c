#!/usr/bin/env python3
"""Marker genes of every cluster column in one pass over the expression matrix: markers.npz (uns entries) and markers.tsv."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.markers_io import columns_for_markers, write_markers
from scclust.merge import gather_columns


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@config_option
@dataset_option
@click.option("--out-npz", required=True, type=click.Path(), help="markers.npz: the uns entries MERGE adds to the store")
@click.option("--out-tsv", required=True, type=click.Path(), help="markers.tsv")
@click.option("--sums", multiple=True, type=click.Path(exists=True), help="MARKERS_SUMS' .npy and .json files")
@versions_option
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    input_path: str,
    config_path: str,
    dataset_path: str,
    out_npz: str,
    out_tsv: str,
    sums: tuple[str, ...],
    versions: str,
    results: tuple[str, ...],
) -> None:
    """Rank genes for every cluster of every column (scanpy's t-test), from one pass over the rows or the parts' sums."""
    cfg = load_config(config_path)
    dataset = read_json(dataset_path)
    columns = columns_for_markers(gather_columns(list(results), dataset, cfg))
    write_markers(input_path, dataset["markers"], columns, cfg.markers_n_genes, out_npz, out_tsv, sums)
    write_versions(versions, "scclust_markers.py")


if __name__ == "__main__":
    main()
