"""Which image each task runs in, as `nextflow inspect` resolves conf/containers.config for a user's options."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import NEXTFLOW, ROOT


def containers(testdata, tmp_path, *args: str) -> dict[str, str]:
    cmd = [NEXTFLOW, "inspect", str(ROOT / "main.nf"), "-profile", "test,podman", "--input", str(testdata["zarr"])]
    cmd += ["--outdir", str(tmp_path / "out"), "--batch_key", "batch", *args]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True)
    doc = json.loads(proc.stdout[proc.stdout.index("{") :])
    return {p["name"]: p["container"] for p in doc["processes"]}


@pytest.mark.parametrize(
    ("args", "integrate", "cluster"),
    [
        # no image holds both RAPIDS and PyPI's torch, so scVI has its own image on CPU and on GPU
        (("--integration", "scvi"), "scclust/scclust-scvi:0.1.0", "scclust/scclust-cpu:0.1.0"),
        (("--integration", "scvi", "--use_gpu", "true"), "scclust/scclust-scvi:0.1.0", "scclust/scclust-cuda:0.1.0"),
        (("--integration", "harmony", "--use_gpu", "true"), "scclust/scclust-cuda:0.1.0", "scclust/scclust-cuda:0.1.0"),
        (("--integration", "harmony", "--scvi_container", "x/y:1"), "scclust/scclust-cpu:0.1.0", "scclust/scclust-cpu:0.1.0"),
    ],
)
def test_integrate_image_follows_the_method(testdata, tmp_path, args, integrate, cluster):
    images = containers(testdata, tmp_path, *args)
    assert images["INTEGRATE"] == integrate and images["CLUSTER"] == cluster
