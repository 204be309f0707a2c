include { q } from '../utils'

// Runs on the launch machine without a container (conf/modules.config): it writes into --outdir, which a
// container or a cluster node may not see, and needs nothing but a POSIX shell.
process PUBLISH {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(items, stageAs: 'items/*')
    val outdir

    script:
    def itemArgs = items instanceof List ? items.collect { i -> q(i) }.join(' ') : q(items)
    """
    scclust_publish.sh ${q(outdir)} ${q(meta.id)} ${itemArgs}
    """

    stub:
    """
    true
    """
}
