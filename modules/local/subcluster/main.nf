include { q } from '../utils'

process SUBCLUSTER {
    tag "${meta.id} ${meta.column} level ${meta.level} ${batch.baseName}"
    label 'process_single'
    label 'process_gpu'

    input:
    tuple val(meta), path(parent, stageAs: 'parent/*'), path(batch, stageAs: 'batch/*'), path(input, stageAs: 'input/*'), path(graph_store, stageAs: 'graph/*')
    path config

    output:
    tuple val(meta), path("part.npz"), emit: part
    path "versions.yml",               emit: versions

    script:
    """
    scclust_subcluster.py --parent ${q(parent)} --batch ${q(batch)} --config ${q(config)} \\
        --input ${q(input)} --graph-store ${q(graph_store)} --out part.npz
    """

    stub:
    """
    touch part.npz versions.yml
    """
}
