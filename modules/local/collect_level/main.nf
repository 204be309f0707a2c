include { q; qAll } from '../utils'

process COLLECT_LEVEL {
    tag "${meta.id} ${meta.column} level ${meta.level}"
    label 'process_single'

    input:
    tuple val(meta), path(parent, stageAs: 'parent/*'), path(parts, stageAs: 'parts/part*.npz'), path(dataset)
    path config

    output:
    tuple val(meta), path("result.npz"), emit: result, topic: scclust_levels

    script:
    """
    scclust_collect.py --parent ${q(parent)} --column ${q(meta.column)} --level ${q(meta.level)} \\
        --config ${q(config)} --dataset ${q(dataset)} --out result.npz ${qAll(parts)}
    """

    stub:
    """
    touch result.npz
    """
}
