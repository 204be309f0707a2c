include { q } from '../utils'

process STABILITY {
    tag "${meta.id} ${algorithm} bootstrap ${bootstrap} #${indices}"
    label 'process_single'
    label 'process_high_memory'

    input:
    tuple val(meta), path(graph_store, stageAs: 'graph/*'), path(dataset), val(algorithm), val(indices), val(bootstrap)
    path config

    output:
    tuple val(meta), path("bootstrap.npz"), emit: bootstrap
    path "versions.yml",                    emit: versions

    script:
    """
    scclust_stability.py --graph-store ${q(graph_store)} --config ${q(config)} --dataset ${q(dataset)} \\
        --algorithm ${q(algorithm)} --indices ${q(indices)} --bootstrap ${q(bootstrap)} --out bootstrap.npz
    """

    stub:
    """
    touch bootstrap.npz versions.yml
    """
}
