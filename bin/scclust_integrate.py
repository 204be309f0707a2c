#!/usr/bin/env python3
"""Batch-aware HVGs, then Harmony or scVI, into a small zarr store with the embedding and its params."""

import click

from scclust.cli import config_option, dataset_option, read_json, user_errors, versions_option, write_versions
from scclust.config import load_config
from scclust.integrate import write_integration


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@config_option
@dataset_option
@click.option("--threads", required=True, type=click.IntRange(min=1), help="the task's cpus")
@click.option("--out", required=True, type=click.Path())
@versions_option
@user_errors
def main(input_path: str, config_path: str, dataset_path: str, threads: int, out: str, versions: str) -> None:
    """Write the integration store."""
    params = write_integration(input_path, load_config(config_path), read_json(dataset_path), out, threads=threads)
    extra = ("harmonypy",) if params["method"] == "harmony" else ("scvi-tools", "torch")
    write_versions(versions, "scclust_integrate.py", extra)


if __name__ == "__main__":
    main()
