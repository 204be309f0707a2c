include { q } from '../utils'

process PREFLIGHT {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(input, stageAs: 'input/*')
    path config

    output:
    tuple val(meta), path("dataset.json"), emit: dataset

    script:
    """
    scclust_preflight.py --input ${q(input)} --id ${q(meta.id)} --config ${q(config)} --out dataset.json
    """

    stub:
    """
    echo '{}' > dataset.json
    """
}
