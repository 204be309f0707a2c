include { q } from '../utils'

process UMAP {
    tag "${meta.id}"
    label 'process_medium'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(graph_store, stageAs: 'graph/*'), path(dataset)
    path config

    output:
    tuple val(meta), path("umap.npz"), emit: umap
    path "versions.yml",               emit: versions

    script:
    """
    scclust_umap.py --input ${q(input)} --graph-store ${q(graph_store)} --config ${q(config)} --dataset ${q(dataset)} --out umap.npz
    """

    stub:
    """
    touch umap.npz versions.yml
    """
}
