"""CLUSTER's memory request follows the graph's size, grows after a kill for memory, and stops at --max_memory."""

from __future__ import annotations

import json

import pytest

from conftest import run_pipeline
from scclust.config import config_from_params
from scclust.dataset import inspect_dataset
from scclust.resources import BASE_BYTES, BYTES_PER_ENTRY, cluster_memory_bytes, graph_entries_estimate


def test_request_is_a_function_of_the_stored_graph(testdata):
    import anndata as ad

    stored = ad.read_h5ad(testdata["h5ad"]).obsp["connectivities"].nnz
    described = inspect_dataset(testdata["h5ad"], config_from_params({"resolutions": "0.5"}), "pbmc")
    assert described["graph_entries"] == stored
    assert described["cluster_memory_bytes"] == BASE_BYTES + BYTES_PER_ENTRY * stored == cluster_memory_bytes(stored)
    recomputed = inspect_dataset(testdata["zarr"], config_from_params({"recompute_neighbors": True, "n_neighbors": 30}), "x")
    assert recomputed["graph_entries"] == graph_entries_estimate(700, 30) == 2 * 700 * 29


@pytest.mark.pipeline
def test_killed_for_memory_retries_with_more_then_names_max_memory(testdata, tmp_path):
    # every CLUSTER attempt dies as the kernel's OOM killer would end it (exit 137)
    killer = tmp_path / "oom.config"
    killer.write_text(
        "process { withName: 'CLUSTER' { beforeScript = 'exit 137' } }\n"
        "trace { fields = 'task_id,name,status,exit,memory'; raw = true }\n"
    )
    run = run_pipeline(
        tmp_path, "-c", str(killer), "--input", str(testdata["h5ad"]), "--resolutions", "0.5", "--max_memory", "2.GB"
    )
    assert run.returncode != 0
    message = [line for line in run.output.splitlines() if line.startswith("ERROR: ") and "CLUSTER (" in line]
    assert len(message) == 1 and message[0].endswith(
        "CLUSTER (pbmc leiden #0) was killed for memory with 2 GB, the --max_memory cap; raise --max_memory "
        "(needs about 1 GB + 128 bytes per graph entry)"
    )
    trace = next((run.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text().splitlines()
    attempts = [line.split("\t") for line in trace if "CLUSTER (" in line]
    dataset = json.loads(next(tmp_path.glob("work/*/*/dataset.json")).read_text())
    first = dataset["cluster_memory_bytes"]
    assert [(a[3], int(a[4])) for a in attempts] == [("137", first), ("137", 2 * 1024**3)]
