include { q; qAll } from '../utils'

// Runs on the launch machine without a container (conf/modules.config): it writes into --outdir, which a
// container or a cluster node may not see, and needs nothing but a POSIX shell.
process PUBLISH {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(items, stageAs: 'items/*')
    val outdir

    output:
    val meta, emit: done

    script:
    """
    scclust_publish.sh ${q(outdir)} ${q(meta.id)} ${qAll(items)}
    """

    stub:
    """
    true
    """
}
