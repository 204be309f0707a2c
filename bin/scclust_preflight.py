#!/usr/bin/env python3
"""Check one dataset against the run before any heavy work; describe it in dataset.json."""

import click

from scclust.cli import user_errors, write_json
from scclust.config import load_config
from scclust.dataset import inspect_dataset


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(), help=".h5ad or .zarr")
@click.option("--id", "dataset_id", required=True)
@click.option("--config", "config_path", required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path())
@user_errors
def main(input_path: str, dataset_id: str, config_path: str, out: str) -> None:
    """Write dataset.json or fail with one line."""
    write_json(out, inspect_dataset(input_path, load_config(config_path), dataset_id))


if __name__ == "__main__":
    main()
