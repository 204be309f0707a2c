include { q; qAll } from '../utils'

// A dataset's stability after a round of bootstraps: each new file read once, added to the previous round's
// comparisons (stability.npz); stability.json says which columns get the next round. MERGE and REPORT read the
// last round's stability.json.
process STABILITY_SUMMARY {
    tag "${meta.id} round ${round}"
    label 'process_single'

    input:
    tuple val(meta), path(dataset), path(results, stageAs: 'results/result*.npz'), path(previous, stageAs: 'previous/*'), path(bootstraps, stageAs: 'bootstraps/bootstrap*.npz'), val(round)
    path config

    output:
    tuple val(meta), path("stability.json"), path("stability.npz"), emit: summary
    path "versions.yml",                                            emit: versions

    script:
    def previousArg = previous ? "--previous ${qAll(previous.sort { f -> f.name })}" : ''
    """
    scclust_stability_summary.py --config ${q(config)} --dataset ${q(dataset)} ${qAll(results, '--result')} \\
        --round ${q(round)} ${previousArg} --out stability.json ${qAll(bootstraps)}
    """

    stub:
    """
    echo '{}' > stability.json
    touch stability.npz versions.yml
    """
}
