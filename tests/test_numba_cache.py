"""numba's on-disk cache of pynndescent's and umap's kernels: compiled once per machine, the same graph every time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The kNN graph of a small cluster as SUBCLUSTER (recompute) builds it: scclust's neighbors_on, or plain scanpy in a
# process where numba caches nothing. Each run is a new process, as each Nextflow task is.
SCRIPT = """
import hashlib, json, sys
import numpy as np
x = np.random.default_rng(0).normal(size=(2000, 20)).astype(np.float32)
if sys.argv[1] == "scclust":
    from scclust.config import Config
    from scclust.neighbors import neighbors_on
    adata = neighbors_on(x, Config(algorithms=["leiden"], resolutions=[1.0], seed=0), n_neighbors=15, key="neighbors",
                         transformer="sklearn")
else:
    import anndata as ad, pandas as pd, scanpy as sc
    adata = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(2000)]), obsm={"X_pca": x})
    sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca", random_state=0, transformer="sklearn")
graph = adata.obsp["connectivities"]
print(json.dumps([hashlib.sha256(getattr(graph, k).tobytes()).hexdigest() for k in ("data", "indices", "indptr")]))
"""


def graph_digest(mode: str, cache: Path) -> list[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cached_kernels_give_the_same_graph_as_scanpy(tmp_path):
    plain = graph_digest("scanpy", tmp_path / "plain")
    uncached = {p.name.split(".")[0] for p in (tmp_path / "plain").rglob("*.nbi")}
    assert not uncached & {"umap_", "distances"}, "plain scanpy must not cache these, or the test proves nothing"
    first = graph_digest("scclust", tmp_path / "cache")
    cached = {p.name.split(".")[0] for p in (tmp_path / "cache").rglob("*.nbi")}
    # umap's membership kernels and pynndescent's distances, which were compiled again in every task
    assert {"umap_", "distances"} <= cached, cached
    second = graph_digest("scclust", tmp_path / "cache")
    assert plain == first == second
    # where no cache can be written (a path under a file: refused even for root), kernels compile as before
    (tmp_path / "file").write_text("")
    assert graph_digest("scclust", tmp_path / "file" / "cache") == plain
