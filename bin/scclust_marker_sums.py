#!/usr/bin/env python3
"""One part of MARKERS' pass over the expression matrix: exact sums per cluster and gene, as an .npy file."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.markers_io import columns_for_markers
from scclust.markers_pass import write_sums
from scclust.merge import gather_columns


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@config_option
@dataset_option
@click.option("--part", required=True, type=int, help="index into dataset.json's markers.parts")
@click.option("--out", required=True, type=click.Path(), help="markers_sums.<part>.npy")
@versions_option
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True))
@user_errors
def main(
    input_path: str, config_path: str, dataset_path: str, part: int, out: str, versions: str, results: tuple[str, ...]
) -> None:
    """Sum each gene's values, squares and non-zeros per cluster of every column, over the part's rows and genes."""
    cfg = load_config(config_path)
    dataset = read_json(dataset_path)
    columns = columns_for_markers(gather_columns(list(results), dataset, cfg))
    write_sums(input_path, dataset["markers"], columns, part, out)
    write_versions(versions, "scclust_marker_sums.py")


if __name__ == "__main__":
    main()
