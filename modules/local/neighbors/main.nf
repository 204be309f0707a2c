include { q } from '../utils'

process NEIGHBORS {
    tag "${meta.id}"
    label 'process_medium'
    label 'process_gpu'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset)
    path config

    output:
    tuple val(meta), path("graph.zarr"), emit: graph
    path "versions.yml",                 emit: versions

    script:
    """
    scclust_neighbors.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} --out graph.zarr
    """

    stub:
    """
    mkdir graph.zarr
    touch versions.yml
    """
}
