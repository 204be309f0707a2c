#!/usr/bin/env python3
"""Before any heavy work: validate the run's parameters, check one dataset against them, describe it.

Writes config.json (the normalised parameters every later task reads) and dataset.json. Validation happens
here rather than in a task of its own: one Python start-up fewer on the way to the first clustering task.
"""

import click

from scclust.cli import read_json, user_errors, write_json, write_versions
from scclust.config import config_from_params
from scclust.dataset import inspect_dataset
from scclust.schema import load_schema, validate_params


@click.command()
@click.option("--params", "params_path", required=True, type=click.Path(exists=True), help="params as Nextflow has them")
@click.option("--schema", "schema_path", required=True, type=click.Path(exists=True), help="nextflow_schema.json")
@click.option("--input", "input_path", required=True, type=click.Path(), help=".h5ad or .zarr")
@click.option("--id", "dataset_id", required=True)
@click.option("--out-config", required=True, type=click.Path(), help="normalised config.json")
@click.option("--out", required=True, type=click.Path(), help="dataset.json")
@click.option("--versions", default="versions.yml", show_default=True)
@user_errors
def main(params_path: str, schema_path: str, input_path: str, dataset_id: str, out_config: str, out: str, versions: str) -> None:
    """Fail with one line naming the parameter or file, or write config.json and dataset.json."""
    params = read_json(params_path)
    if params.get("validate_params", True) is not False:
        validate_params(params, load_schema(schema_path))
    cfg = config_from_params(params)
    dataset = inspect_dataset(input_path, cfg, dataset_id)
    write_json(out_config, cfg.to_json())
    write_json(out, dataset)
    write_versions(versions, "scclust_preflight.py")


if __name__ == "__main__":
    main()
