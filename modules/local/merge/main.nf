include { q; qAll } from '../utils'

process MERGE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(results, stageAs: 'results/result*.npz'), path(graph_store, stageAs: 'graph/*'), path(umap, stageAs: 'umap/*'), path(column_metrics, stageAs: 'metrics/*'), path(stability, stageAs: 'stability/*'), path(markers, stageAs: 'markers/*')
    path config
    path run_info

    output:
    tuple val(meta), path("clustering.zarr"), emit: zarr
    tuple val(meta), path("clusters.tsv"),    emit: tsv
    tuple val(meta), path("metrics.tsv"),     emit: metrics
    path "versions.yml",                      emit: versions

    script:
    def graphArg = graph_store ? "--graph-store ${q(graph_store)}" : ''
    def umapArg = umap ? "--umap ${q(umap)}" : ''
    def scoredArg = column_metrics ? "--column-metrics ${q(column_metrics)}" : ''
    def markersArg = markers ? "--markers ${q(markers)}" : ''
    def stabilityArg = stability ? "--stability ${q(stability)}" : ''
    """
    scclust_merge.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} --run-info ${q(run_info)} \\
        ${graphArg} ${umapArg} ${scoredArg} ${markersArg} ${stabilityArg} \\
        --out-zarr clustering.zarr --out-tsv clusters.tsv --out-metrics-json metrics.json --out-metrics-tsv metrics.tsv \\
        ${qAll(results)}
    """

    stub:
    """
    mkdir clustering.zarr
    touch clusters.tsv metrics.json metrics.tsv versions.yml
    """
}
