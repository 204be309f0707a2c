include { q; qAll } from '../utils'

process REPORT {
    tag "${meta.id}"
    label 'process_single'
    label 'process_high_memory'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(results, stageAs: 'results/result*.npz'), path(umap, stageAs: 'umap/*'), path(column_metrics, stageAs: 'metrics/*'), path(stability, stageAs: 'stability/*'), path(markers, stageAs: 'markers/*')
    path config
    path params_json
    path run_info

    output:
    tuple val(meta), path("report.html"),  emit: html
    tuple val(meta), path("plots"),        emit: plots
    tuple val(meta), path("*_mqc.*"),      emit: multiqc
    tuple val(meta), path("summary.json"), emit: summary
    path "versions.yml",                   emit: versions

    script:
    def umapArg = umap ? "--umap ${q(umap)}" : ''
    def scoredArg = column_metrics ? "--column-metrics ${q(column_metrics)}" : ''
    def markersArg = markers ? "--markers ${q(markers)}" : ''
    def stabilityArg = stability ? "--stability ${q(stability)}" : ''
    """
    scclust_report.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} --params ${q(params_json)} \\
        --run-info ${q(run_info)} ${umapArg} ${scoredArg} ${markersArg} ${stabilityArg} ${qAll(results)}
    """

    stub:
    """
    mkdir plots
    touch report.html stub_mqc.tsv summary.json versions.yml
    """
}
