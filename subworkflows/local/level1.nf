/*
 * Level 1: per dataset and algorithm, one CLUSTER task per batch of resolutions (the plan's round-robin batches),
 * each building its graph once.
 */
include { CLUSTER } from '../../modules/local/cluster'

workflow LEVEL1 {
    take:
    stores   // [meta, input, dataset.json, graph store]
    config
    plan

    main:
    tasks = stores.combine(plan).flatMap { meta, input, json, graph, p ->
        p.algorithms.collectMany { algorithm ->
            p.batches.collect { indices -> [meta + [level: 1, depth: p.depth], input, graph, json, algorithm, indices] }
        }
    }
    CLUSTER(tasks, config)

    emit:
    results  = CLUSTER.out.result     // [meta, result.npz] with one column per resolution of the batch
    versions = CLUSTER.out.versions
}
