#!/usr/bin/env python3
"""Validate the run's parameters against nextflow_schema.json and normalise them into config.json."""

import click

from scclust.cli import read_json, user_errors, write_json, write_versions
from scclust.config import config_from_params
from scclust.schema import load_schema, validate_params


@click.command()
@click.option("--params", "params_path", required=True, type=click.Path(exists=True), help="params as Nextflow has them")
@click.option("--schema", "schema_path", required=True, type=click.Path(exists=True), help="nextflow_schema.json")
@click.option("--out", required=True, type=click.Path(), help="normalised config.json")
@click.option("--versions", default="versions.yml", show_default=True)
@user_errors
def main(params_path: str, schema_path: str, out: str, versions: str) -> None:
    """Fail with one line naming the parameter, or write config.json."""
    params = read_json(params_path)
    if params.get("validate_params", True) is not False:
        validate_params(params, load_schema(schema_path))
    write_json(out, config_from_params(params).to_json())
    write_versions(versions, "scclust_validate.py")


if __name__ == "__main__":
    main()
