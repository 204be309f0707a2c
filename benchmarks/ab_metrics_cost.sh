#!/bin/bash
# A/B of what the metrics and the report add at 100k cells x 10 resolutions (issue 10), alternating trees.
# The old tree (METRICS as one task between CLUSTER and MERGE): `git worktree add /tmp/wt-old cf5c474`; its
# library is put first on PYTHONPATH and its own run_evaluation.py measures it (docs/benchmarks.md, section 4).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${OLD:-/tmp/wt-old}
DATA=${DATA:-$ROOT/benchmarks/data/pbmc_up_100k_n07.zarr}
export PATH=$ROOT/.venv/bin:$PATH NXF_HOME=${NXF_HOME:-$ROOT/.nextflow-home}
for i in 1 2; do
  for tree in old new; do
    if [ $tree = old ]; then root=$OLD; pp=$OLD/src; else root=$ROOT; pp=; fi
    echo "== $tree $i $(date +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    PYTHONPATH=$pp python "$root/benchmarks/run_evaluation.py" metrics-cost --input "$DATA" --repeats 1 \
      --workroot "${WORKROOT:-/tmp/ab-mc}/$tree-$i" -- --label_columns bulk_labels
  done
done
