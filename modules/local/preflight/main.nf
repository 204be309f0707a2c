include { q } from '../utils'

process PREFLIGHT {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(input, stageAs: 'input/*')
    path params_in
    path schema

    output:
    path "config.json",                    emit: config
    tuple val(meta), path("dataset.json"), emit: dataset
    path "versions.yml",                   emit: versions

    script:
    """
    scclust_preflight.py --params ${q(params_in)} --schema ${q(schema)} --input ${q(input)} --id ${q(meta.id)} \\
        --out-config config.json --out dataset.json
    """

    stub:
    """
    echo '{"resolution_batches": [[0]], "level_log": []}' > config.json
    echo '{}' > dataset.json
    touch versions.yml
    """
}
