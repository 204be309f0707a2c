include { q } from '../utils'

process PLOTS {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset), path(results, stageAs: 'results/result*.npz'), path(umap, stageAs: 'umap/*')
    path config

    output:
    tuple val(meta), path("plots"), emit: plots

    script:
    def resultArgs = results instanceof List ? results.collect { r -> q(r) }.join(' ') : q(results)
    def umapArg = umap ? "--umap ${q(umap)}" : ''
    """
    scclust_plots.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} ${umapArg} --outdir plots ${resultArgs}
    """

    stub:
    """
    mkdir plots && touch plots/stub.png
    """
}
