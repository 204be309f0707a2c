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
    path "plan.json",                      emit: plan
    tuple val(meta), path("dataset.json"), emit: dataset
    path "versions.yml",                   emit: versions

    script:
    """
    scclust_preflight.py --params ${q(params_in)} --schema ${q(schema)} --input ${q(input)} --input-name ${q(meta.input)} \\
        --id ${q(meta.id)} --executor ${q(task.executor)} --out-config config.json --out-plan plan.json --out dataset.json
    """

    stub:
    """
    echo '{}' > config.json
    echo '{"algorithms": ["leiden"], "batches": ["0"], "depth": 1, "n_level_results": 0, "n_results": 1}' > plan.json
    echo '{}' > dataset.json
    touch versions.yml
    """
}
