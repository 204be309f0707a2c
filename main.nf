#!/usr/bin/env nextflow
/*
 * scclust: multi-resolution and hierarchical clustering of single-cell data.
 * The DAG is in workflows/scclust.nf; the Python library (src/scclust) holds the logic.
 */
include { SCCLUST } from './workflows/scclust'

workflow {
    SCCLUST(params)

    workflow.onError {
        // Nextflow's own message names no parameter; the caps it hit are ours.
        def message = workflow.errorMessage ?: ''
        if (message.contains('exceeds available memory')) {
            log.error("a task asked for more memory than this machine has: lower --max_memory (now ${params.max_memory})")
        }
        if (message.contains('exceeds available CPUs')) {
            log.error("a task asked for more CPUs than this machine has: lower --max_cpus (now ${params.max_cpus})")
        }
    }
}
