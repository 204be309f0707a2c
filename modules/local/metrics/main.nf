include { q } from '../utils'

process METRICS {
    tag "${meta.id}"
    label 'process_single'
    label 'process_high_memory'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(graph_store, stageAs: 'graph/*'), path(results, stageAs: 'results/result*.npz'), path(bootstraps, stageAs: 'bootstraps/bootstrap*.npz')
    path config

    output:
    tuple val(meta), path("metrics.json"), emit: json
    tuple val(meta), path("metrics.tsv"),  emit: tsv
    path "versions.yml",                   emit: versions

    script:
    def resultArgs = results instanceof List ? results.collect { r -> q(r) }.join(' ') : q(results)
    def bootstrapList = bootstraps instanceof List ? bootstraps : (bootstraps ? [bootstraps] : [])
    def bootstrapArgs = bootstrapList.collect { b -> "--bootstrap ${q(b)}" }.join(' ')
    """
    scclust_metrics.py --input ${q(input)} --graph-store ${q(graph_store)} --config ${q(config)} --dataset ${q(dataset)} \\
        ${bootstrapArgs} --out-json metrics.json --out-tsv metrics.tsv ${resultArgs}
    """

    stub:
    """
    echo '{}' > metrics.json
    touch metrics.tsv versions.yml
    """
}
