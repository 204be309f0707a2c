include { q; qAll } from '../utils'

// One part (row range, or gene range of a CSC matrix) of MARKERS' pass: its exact sums per cluster and gene
// (scclust.markers_pass.write_sums). Only matrices above --markers_task_entries stored values are split.
process MARKERS_SUMS {
    tag "${meta.id} part ${part}"
    label 'process_single'
    label 'process_high_memory'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(results, stageAs: 'results/result*.npz'), val(part)
    path config

    output:
    tuple val(meta), path("markers_sums.${part}.npy*"), emit: sums   // the sums and their .json (part, layout digest)
    path "versions.yml",                                emit: versions

    script:
    """
    scclust_marker_sums.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} \\
        --part ${q(part)} --out ${q("markers_sums.${part}.npy")} ${qAll(results)}
    """

    stub:
    """
    touch markers_sums.${part}.npy markers_sums.${part}.npy.json versions.yml
    """
}
