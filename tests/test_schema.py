"""nextflow_schema.json and the parameter validation built on it (scclust.schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from scclust.errors import UserError
from scclust.schema import flatten_schema, load_schema, schema_defaults, validate_params

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "nextflow_schema.json"

# The contract: every parameter and its default. A change here is a change of the pipeline's interface.
EXPECTED_DEFAULTS: dict[str, Any] = {
    "integration": "none",
    "batch_key": None,
    "n_top_genes": 2000,
    "counts_layer": "counts",
    "integration_rep": None,
    "n_latent": 30,
    "scvi_max_epochs": None,
    "integration_args": "{}",
    "algorithm": "leiden",
    "resolutions": "1.0",
    "resolutions_per_task": "auto",
    "neighbors_key": "neighbors",
    "recompute_neighbors": False,
    "n_neighbors": 15,
    "use_rep": None,
    "n_pcs": 50,
    "pca_layer": None,
    "seed": 0,
    "flavor": "igraph",
    "n_iterations": 2,
    "clustering_args": "{}",
    "overwrite": False,
    "hierarchy": None,
    "subcluster_graph": "recompute",
    "min_cluster_size": None,
    "subcluster_batch_cells": 20000,
    "exact_knn_max_cells": 50000,
    "recompute_umap": False,
    "umap_colors": "",
    "label_columns": "",
    "stability_bootstraps": 10,
    "stability_adaptive": True,
    "subsample_fraction": 0.8,
    "markers": True,
    "markers_layer": None,
    "markers_n_genes": 100,
    "markers_task_entries": 250_000_000,
    "gene_symbols": None,
    "use_gpu": False,
    "n_cell_cpu": 100000,
    "max_cluster_factor": 50,
    "max_singleton_fraction": 0.5,
    "cpu_container": "scclust/scclust-cpu:0.1.0",
    "gpu_container": "scclust/scclust-cuda:0.1.0",
    "scvi_container": "scclust/scclust-scvi:0.1.0",
    "slurm_queue": None,
    "slurm_options": None,
    "awsbatch_queue": None,
    "awsbatch_region": "eu-west-1",
    "awsbatch_workdir": None,
    "max_cpus": 2,
    "max_memory": "8.GB",
    "max_time": "24.h",
    "help": False,
    "validate_params": True,
}
REQUIRED = ["input", "outdir"]
GROUPS = [
    "input_output_options",
    "integration_options",
    "clustering_options",
    "hierarchy_options",
    "umap_options",
    "evaluation_options",
    "markers_options",
    "gpu_options",
    "container_options",
    "executor_options",
    "max_job_request_options",
    "generic_options",
]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_schema(SCHEMA_PATH)


@pytest.fixture
def params(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema_defaults(schema), "input": "data/pbmc.h5ad", "outdir": "results"}


def error_of(params: dict[str, Any], schema: dict[str, Any]) -> str:
    with pytest.raises(UserError) as info:
        validate_params(params, schema)
    message = str(info.value)
    assert "\n" not in message
    assert message.strip() == message and message
    return message


# --- the schema file ------------------------------------------------------------------------------------


def test_schema_is_nf_core_shaped(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("nextflow_schema.json")
    assert schema["title"] and schema["description"]
    assert schema["type"] == "object"
    assert list(schema["$defs"]) == GROUPS
    assert schema["allOf"] == [{"$ref": f"#/$defs/{group}"} for group in GROUPS]
    for name, group in schema["$defs"].items():
        assert group["type"] == "object", name
        assert group["title"] and group["description"] and group["fa_icon"], name
        for param, prop in group["properties"].items():
            assert "type" in prop and prop.get("description"), param
    assert schema["$defs"]["generic_options"]["properties"]["help"]["hidden"] is True
    assert schema["$defs"]["generic_options"]["properties"]["validate_params"]["hidden"] is True


def test_schema_is_valid_json_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    Draft202012Validator.check_schema(flatten_schema(schema))


def test_schema_file_is_plain_json() -> None:
    # Seqera Platform and nf-core tools read it with a plain JSON parser: no comments, no trailing commas.
    json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def test_defaults_are_the_contract(schema: dict[str, Any]) -> None:
    assert schema_defaults(schema) == EXPECTED_DEFAULTS
    flat = flatten_schema(schema)
    assert flat["required"] == REQUIRED
    assert set(flat["properties"]) == set(EXPECTED_DEFAULTS) | set(REQUIRED)
    assert not any("default" in flat["properties"][name] for name in REQUIRED)


def test_defaults_match_their_own_rules(schema: dict[str, Any]) -> None:
    properties = flatten_schema(schema)["properties"]
    for name, default in schema_defaults(schema).items():
        errors = list(Draft202012Validator(properties[name]).iter_errors(default))
        assert not errors, (name, [e.message for e in errors])


def test_defaults_plus_required_validate(params: dict[str, Any], schema: dict[str, Any]) -> None:
    validate_params(params, schema)
    validate_params({"input": "samples.csv", "outdir": "/data/out"}, schema)


def test_load_schema_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_schema(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json", encoding="utf-8")
    with pytest.raises(UserError, match="not valid JSON"):
        load_schema(bad)


# --- errors name the parameter on one line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"n_neighbors": "abc"}, '--n_neighbors must be an integer, got "abc"'),
        ({"n_neighbors": "15"}, "--n_neighbors must be an integer"),  # strict, as nf-schema
        ({"n_neighbors": 15.5}, "--n_neighbors must be an integer"),
        ({"use_gpu": "true"}, "--use_gpu must be true or false"),
        ({"clustering_args": [1]}, "--clustering_args must be a string or a mapping"),
        ({"hierarchy": True}, "--hierarchy must be an integer"),
        ({"n_neighbors": 1}, "--n_neighbors: 1 is less than the minimum of 2"),
        ({"max_singleton_fraction": 2}, "--max_singleton_fraction: 2 is greater than the maximum of 1"),
        ({"max_cluster_factor": 0}, "--max_cluster_factor: 0 must be greater than 0"),
        ({"hierarchy": 0}, "--hierarchy: 0 is less than the minimum of 1"),
        ({"min_cluster_size": 0}, "--min_cluster_size: 0 is less than the minimum of 1"),
        ({"seed": -1}, "--seed: -1 is less than the minimum of 0"),
        ({"seed": 2**32}, "--seed: 4294967296 is greater than the maximum of 4294967295"),
        ({"resolutions_per_task": "many"}, '--resolutions_per_task: "many" is invalid: must be auto or a positive integer'),
        ({"resolutions_per_task": 0}, "--resolutions_per_task: 0 is invalid: must be auto or a positive integer"),
        ({"n_iterations": 0}, "--n_iterations: 0 is invalid"),
        ({"n_iterations": -2}, "--n_iterations: -2 is invalid"),
        ({"flavor": "foo"}, '--flavor: "foo" is not one of "igraph", "leidenalg"'),
        ({"subcluster_graph": "x"}, '--subcluster_graph: "x" is not one of "recompute", "induced"'),
        ({"outdir": "s3://bucket/results"}, "--outdir:"),
        (
            {"algorithm": "leidn"},
            '--algorithm: "leidn" is invalid: must be leiden, louvain or leiden,louvain',
        ),
        ({"resolutions": "0"}, "--resolutions:"),
        ({"resolutions": "0.2,,0.5"}, "--resolutions:"),
        ({"resolutions": "high"}, "--resolutions:"),
        ({"resolutions": -0.5}, "--resolutions:"),
        ({"resolutions": [0.2, 0]}, "--resolutions[1]:"),
        ({"input": "data/pbmc.loom"}, "--input:"),
        ({"max_memory": "8 GiB"}, "--max_memory:"),
        ({"max_time": "1 week"}, "--max_time:"),
        ({"awsbatch_workdir": "/scratch/work"}, "--awsbatch_workdir:"),
        ({"integration": "bbknn"}, '--integration: "bbknn" is not one of "none", "harmony", "scvi"'),
        ({"n_top_genes": 0}, "--n_top_genes: 0 is less than the minimum of 1"),
        ({"scvi_max_epochs": 0}, "--scvi_max_epochs: 0 is less than the minimum of 1"),
        ({"n_latent": "30"}, "--n_latent must be an integer"),
    ],
)
def test_invalid_values(params: dict[str, Any], schema: dict[str, Any], override: dict[str, Any], expected: str) -> None:
    assert error_of({**params, **override}, schema).startswith(expected)


def test_unknown_parameter_suggests_the_close_name(params: dict[str, Any], schema: dict[str, Any]) -> None:
    message = error_of({**params, "resolution": 0.5}, schema)
    assert message == "unknown parameter --resolution (did you mean --resolutions?)"
    assert "did you mean --n_neighbors?" in error_of({**params, "n_neigbors": 10}, schema)


def test_unknown_parameter_without_close_name(params: dict[str, Any], schema: dict[str, Any]) -> None:
    message = error_of({**params, "zzz": 1}, schema)
    assert message.startswith("unknown parameter --zzz") and "did you mean" not in message


def test_kebab_case_parameter_is_not_silently_ignored(params: dict[str, Any], schema: dict[str, Any]) -> None:
    # Nextflow 25.04 turns `--n-neighbors 5` into the key nNeighbors (and nothing else): the pipeline would
    # not read it, so it is an error that points at the snake_case name.
    message = error_of({**params, "nNeighbors": 5}, schema)
    assert message.startswith("unknown parameter --nNeighbors (did you mean --n_neighbors?")


def test_nextflow_option_with_two_hyphens(params: dict[str, Any], schema: dict[str, Any]) -> None:
    assert "(-resume)" in error_of({**params, "resume": True}, schema)
    assert "(-with-trace)" in error_of({**params, "withTrace": True}, schema)


def test_private_keys_are_ignored(params: dict[str, Any], schema: dict[str, Any]) -> None:
    validate_params({**params, "_internal": {"x": 1}}, schema)


@pytest.mark.parametrize("name", REQUIRED)
@pytest.mark.parametrize("value", ["absent", None, ""])
def test_missing_required(params: dict[str, Any], schema: dict[str, Any], name: str, value: Any) -> None:
    if value == "absent":
        del params[name]
    else:
        params[name] = value
    assert error_of(params, schema).startswith(f"missing required parameter --{name}: ")


def test_first_problem_is_deterministic(params: dict[str, Any], schema: dict[str, Any]) -> None:
    # unknown names (alphabetical) before missing required before bad values (schema order)
    bad = {**params, "zeta": 1, "alpha": 1, "n_neighbors": 1, "flavor": "x"}
    del bad["outdir"]
    assert error_of(bad, schema).startswith("unknown parameter --alpha")
    del bad["zeta"], bad["alpha"]
    assert error_of(bad, schema).startswith("missing required parameter --outdir")
    bad["outdir"] = "out"
    assert error_of(bad, schema).startswith("--n_neighbors:")
    assert error_of(dict(reversed(bad.items())), schema).startswith("--n_neighbors:")


def test_long_values_are_shortened(params: dict[str, Any], schema: dict[str, Any]) -> None:
    message = error_of({**params, "clustering_args": ["x" * 500]}, schema)
    assert len(message) < 200 and "..." in message


# --- what Nextflow passes is accepted ------------------------------------------------------------------


@pytest.mark.parametrize(
    "override",
    [
        {"resolutions": 0.5},  # --resolutions 0.5 arrives as a number
        {"resolutions": 2},
        {"resolutions": "0.2,0.5"},  # --resolutions 0.2,0.5 arrives as a string
        {"resolutions": "0.05, 0.1,1"},
        {"resolutions": [0.2, 0.5, 1]},  # a list from a -params-file
        {"algorithm": "louvain"},
        {"algorithm": "leiden,louvain"},
        {"hierarchy": 3},
        {"hierarchy": "{1: 0.1}"},
        {"hierarchy": "{1: 0.1, 3: 0.2}"},
        {"hierarchy": {"2": {"resolution": 0.3, "n_iterations": 5, "flavor": "leidenalg"}}},
        {"hierarchy": None},
        {"clustering_args": {"beta": 0.01}},
        {"clustering_args": '{"beta": 0.01}'},
        {"n_iterations": -1},
        {"resolutions_per_task": "auto"},
        {"resolutions_per_task": 3},
        {"seed": 2**32 - 1},
        {"n_neighbors": 15.0},  # an integer-valued number is an integer in JSON Schema
        {"min_cluster_size": 30},
        {"pca_layer": "counts"},
        {"flavor": "leidenalg", "subcluster_graph": "induced"},
        {"use_gpu": True, "n_cell_cpu": 0, "max_cluster_factor": 2.5, "max_singleton_fraction": 0},
        {"input": "samples.csv"},
        {"input": "s3://bucket/atlas.zarr/"},
        {"input": "/data/atlas.zarr"},
        {"max_memory": "16 GB", "max_time": "2d 12h", "max_cpus": 64},
        {"awsbatch_workdir": "s3://bucket/work", "awsbatch_queue": "q", "slurm_queue": "gpu"},
        {"integration": "scvi", "batch_key": "batch", "n_latent": 10, "scvi_max_epochs": 20},
        {"integration": "harmony", "batch_key": "sample", "integration_args": {"theta": 1}, "use_rep": "X_pca"},
        {"integration": "harmony", "batch_key": "sample", "integration_rep": "X_pca"},
    ],
)
def test_valid_values(params: dict[str, Any], schema: dict[str, Any], override: dict[str, Any]) -> None:
    validate_params({**params, **override}, schema)
