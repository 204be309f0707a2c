include { q } from '../utils'

process INTEGRATE {
    tag "${meta.id}"
    label 'process_medium'
    label 'process_gpu'

    input:
    tuple val(meta), path(input, stageAs: 'input/*'), path(dataset)
    path config

    output:
    tuple val(meta), path("integration.zarr"), emit: store
    path "versions.yml",                       emit: versions

    script:
    """
    scclust_integrate.py --input ${q(input)} --config ${q(config)} --dataset ${q(dataset)} --threads ${q(task.cpus)} \\
        --out integration.zarr
    """

    stub:
    """
    mkdir integration.zarr
    touch versions.yml
    """
}
