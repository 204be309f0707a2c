include { q } from '../utils'

process NEIGHBORS {
    tag "${meta.id}"
    label 'process_medium'
    label 'process_gpu'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(integration, stageAs: 'integration/*')
    path config

    output:
    tuple val(meta), path("graph.zarr"), emit: graph
    path "versions.yml",                 emit: versions

    script:
    def integrationArg = integration ? "--integration-store ${q(integration)}" : ''
    """
    scclust_neighbors.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} ${integrationArg} --out graph.zarr
    """

    stub:
    """
    mkdir graph.zarr
    touch versions.yml
    """
}
