include { q } from '../utils'

process CLUSTER {
    tag "${meta.id} ${algorithm} #${indices}"
    label 'process_single'
    label 'process_high_memory'
    label 'process_gpu'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(graph_store, stageAs: 'graph/*'), path(dataset), val(algorithm), val(indices)
    path config

    output:
    tuple val(meta), path("result.npz"), emit: result
    path "versions.yml",                 emit: versions

    script:
    """
    scclust_cluster.py --graph-store ${q(graph_store)} --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} \\
        --algorithm ${q(algorithm)} --indices ${q(indices)} --out result.npz
    """

    stub:
    """
    touch result.npz versions.yml
    """
}
