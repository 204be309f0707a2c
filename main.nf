#!/usr/bin/env nextflow
/*
 * scclust: multi-resolution and hierarchical clustering of single-cell data.
 * The DAG is in workflows/scclust.nf; the Python library (src/scclust) holds the logic.
 */
include { SCCLUST    } from './workflows/scclust'
include { schemaHelp } from './subworkflows/local/help'

workflow {
    // before anything reads --input: --help needs no other parameter
    if (params.help) {
        println(schemaHelp(file("${projectDir}/nextflow_schema.json"), workflow.manifest))
        return
    }
    SCCLUST(params)
}
