include { q; qAll } from '../utils'

// Marker genes of every column of the dataset from one pass over its expression matrix (scclust.markers).
process MARKERS {
    tag "${meta.id}"
    label 'process_single'
    label 'process_high_memory'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(results, stageAs: 'results/result*.npz')
    path config

    output:
    tuple val(meta), path("markers.npz"),  emit: npz
    tuple val(meta), path("markers.tsv"), emit: tsv
    path "versions.yml",                  emit: versions

    script:
    """
    scclust_markers.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} \\
        --out-npz markers.npz --out-tsv markers.tsv ${qAll(results)}
    """

    stub:
    """
    touch markers.npz markers.tsv versions.yml
    """
}
