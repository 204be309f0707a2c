#!/usr/bin/env python3
"""Before any heavy work: validate the run's parameters, check one dataset against them, describe it.

Writes config.json (the normalised parameters every later task reads), plan.json (what the workflow fans out,
so that Nextflow never parses a raw parameter) and dataset.json. Validation happens
here rather than in a task of its own: one Python start-up fewer on the way to the first clustering task.
"""

import click

from scclust.cli import DISPLAY_PATHS, read_json, user_errors, versions_option, write_json, write_versions
from scclust.config import check_local_resources, config_from_params
from scclust.dataset import inspect_dataset
from scclust.schema import load_schema, validate_params


@click.command()
@click.option("--params", "params_path", required=True, type=click.Path(exists=True), help="params as Nextflow has them")
@click.option("--schema", "schema_path", required=True, type=click.Path(exists=True), help="nextflow_schema.json")
@click.option("--input", "input_path", required=True, type=click.Path(), help=".h5ad or .zarr")
@click.option("--input-name", default=None, help="the input path as the user gave it, for messages")
@click.option("--id", "dataset_id", required=True)
@click.option("--executor", default="local", show_default=True, help="Nextflow executor of the run's tasks")
@click.option("--out-config", required=True, type=click.Path(), help="normalised config.json")
@click.option("--out-plan", required=True, type=click.Path(), help="plan.json: algorithms, batches, depth, counts")
@click.option("--out", required=True, type=click.Path(), help="dataset.json")
@versions_option
@user_errors
def main(
    params_path: str,
    schema_path: str,
    input_path: str,
    input_name: str | None,
    dataset_id: str,
    executor: str,
    out_config: str,
    out_plan: str,
    out: str,
    versions: str,
) -> None:
    """Fail with one line naming the parameter or file, or write config.json, plan.json and dataset.json."""
    if input_name:
        DISPLAY_PATHS[input_path] = input_name
    params = read_json(params_path)
    if params.get("validate_params", True) is not False:
        validate_params(params, load_schema(schema_path))
    cfg = config_from_params(params)
    if executor == "local":
        check_local_resources(params)
    dataset = inspect_dataset(input_path, cfg, dataset_id)
    write_json(out_config, cfg.to_json())
    write_json(out_plan, cfg.plan())
    write_json(out, dataset)
    write_versions(versions, "scclust_preflight.py")


if __name__ == "__main__":
    main()
