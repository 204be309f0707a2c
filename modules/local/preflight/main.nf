include { q } from '../utils'

process PREFLIGHT {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(input, stageAs: 'input/*')
    val params_json   // the run's parameters as JSON: a value, so -resume hashes its content, not a temp file's path
    path schema

    output:
    tuple val(meta), path("params.json"),  emit: params
    tuple val(meta), path("config.json"),  emit: config
    tuple val(meta), path("plan.json"),    emit: plan
    tuple val(meta), path("dataset.json"), emit: dataset
    path "versions.yml",                   emit: versions

    script:
    """
    printf '%s\\n' ${q(params_json)} > params.json
    scclust_preflight.py --params params.json --schema ${q(schema)} --input ${q(input)} --input-name ${q(meta.input)} \\
        --id ${q(meta.id)} --executor ${q(task.executor)} --out-config config.json --out-plan plan.json --out dataset.json
    """

    stub:
    """
    printf '%s\\n' ${q(params_json)} > params.json
    echo '{}' > config.json
    echo '{"algorithms": ["leiden"], "batches": ["0"], "depth": 1, "n_level_results": 0, "n_results": 1, "level_log": []}' > plan.json
    echo '{}' > dataset.json
    touch versions.yml
    """
}
