include { q; qAll } from '../utils'

// Marker genes of every column of the dataset (scclust.markers): from one pass over its expression matrix, or, for
// a matrix split over MARKERS_SUMS tasks, from their sums.
process MARKERS {
    tag "${meta.id}"
    label 'process_single'
    label 'process_high_memory'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(results, stageAs: 'results/result*.npz'), path(sums, stageAs: 'sums/*')
    path config

    output:
    tuple val(meta), path("markers.npz"),  emit: npz
    tuple val(meta), path("markers.tsv"), emit: tsv
    path "versions.yml",                  emit: versions

    script:
    """
    scclust_markers.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} \\
        --out-npz markers.npz --out-tsv markers.tsv ${qAll(sums, '--sums')} ${qAll(results)}
    """

    stub:
    """
    touch markers.npz markers.tsv versions.yml
    """
}
