include { q } from '../utils'

process SPLIT_LEVEL {
    tag "${meta.id} level ${meta.level + 1}"
    label 'process_single'

    input:
    tuple val(meta), path(result, stageAs: 'parent/*')
    path config

    output:
    tuple val(meta), path(result), path("batches/*.json"), emit: batches

    script:
    """
    scclust_split.py --result ${q(result)} --config ${q(config)} --outdir batches
    """

    stub:
    """
    mkdir batches && echo '{}' > batches/stub.00000.json
    """
}
