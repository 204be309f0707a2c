include { q; qAll } from '../utils'

// Hierarchy runs only: the metrics of levels >= 2 on the whole graph (level-1 columns come scored from CLUSTER).
process METRICS {
    tag "${meta.id}"
    label 'process_single'
    label 'process_high_memory'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(graph_store, stageAs: 'graph/*'), path(results, stageAs: 'results/result*.npz')
    path config

    output:
    tuple val(meta), path("column_metrics.json"), emit: json
    path "versions.yml",                          emit: versions

    script:
    """
    scclust_metrics.py --input ${q(input)} --graph-store ${q(graph_store)} --config ${q(config)} --dataset ${q(dataset)} \\
        --out column_metrics.json ${qAll(results)}
    """

    stub:
    """
    echo '{}' > column_metrics.json
    touch versions.yml
    """
}
