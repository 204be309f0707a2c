include { q; qAll } from '../utils'

// A dataset's stability from all its bootstrap files, read once; MERGE and REPORT read the small stability.json.
process STABILITY_SUMMARY {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(dataset), path(results, stageAs: 'results/result*.npz'), path(bootstraps, stageAs: 'bootstraps/bootstrap*.npz')
    path config

    output:
    tuple val(meta), path("stability.json"), emit: json
    path "versions.yml",                     emit: versions

    script:
    """
    scclust_stability_summary.py --config ${q(config)} --dataset ${q(dataset)} ${qAll(results, '--result')} \\
        --out stability.json ${qAll(bootstraps)}
    """

    stub:
    """
    echo '{}' > stability.json
    touch versions.yml
    """
}
