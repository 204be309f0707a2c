#!/bin/bash
# A/B of SUBCLUSTER (--subcluster_graph recompute) before and after the numba kernel cache, alternating trees.
# The old tree: `git worktree add /tmp/wt-old 69c7bad`; its library is put first on PYTHONPATH.
# Per-task SUBCLUSTER times come from each run's execution trace (docs/benchmarks.md, section 3).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${OLD:-/tmp/wt-old}
export PATH=$ROOT/.venv/bin:$PATH NXF_HOME=${NXF_HOME:-$ROOT/.nextflow-home}
for i in 1 2; do
for tree in old new; do
  if [ $tree = old ]; then root=$OLD; pp=$OLD/src; else root=$ROOT; pp=; fi
  d=/tmp/ab-sub/$tree-$i; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  t0=$(date +%s.%N)
  PYTHONPATH=$pp nextflow run "$root/main.nf" -ansi-log false --input "$ROOT/benchmarks/data/pbmc_up_20k_n07.zarr" \
     --resolutions 0.5,1.0 --hierarchy 2 --outdir "$d/out" > log.txt 2>&1
  rc=$?; t1=$(date +%s.%N)
  echo "$tree $i rc=$rc wall $(echo "$t1 - $t0" | bc) s"
  grep SUBCLUSTER "$d"/out/pipeline_info/execution_trace_*.txt | cut -f4,9
done; done
