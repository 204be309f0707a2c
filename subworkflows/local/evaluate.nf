/*
 * Per-column metrics of every dataset and, with --stability_bootstraps B > 0, the bootstrap stability of level 1:
 * B x algorithms x resolution batches STABILITY tasks (each builds its subgraph once for a batch of resolutions,
 * like CLUSTER), then one METRICS task per dataset once all its results and bootstraps are in.
 */

include { STABILITY } from '../../modules/local/stability'
include { METRICS   } from '../../modules/local/metrics'

workflow EVALUATE {
    take:
    stores       // [meta, input, dataset.json, graph store]
    results      // [id, [result files]]: every column of the dataset
    config       // config.json
    algorithms   // list of algorithms
    batches      // list of comma lists of resolution indices (as CLUSTER's)
    bootstraps   // int: number of bootstraps (0: none)

    main:
    if (bootstraps > 0) {
        def perDataset = bootstraps * algorithms.size() * batches.size()
        tasks = stores.flatMap { meta, _path, json, graph ->
            (0..<bootstraps).collectMany { b ->
                algorithms.collectMany { algorithm -> batches.collect { idx -> [meta, graph, json, algorithm, idx, b] } }
            }
        }
        STABILITY(tasks, config)
        boots = STABILITY.out.bootstrap
            .map { meta, f -> [groupKey(meta.id, perDataset), f] }
            .groupTuple()
            .map { id, fs -> [id.toString(), fs.sort { f -> f.toString() }] }
        versions = STABILITY.out.versions
    } else {
        boots = stores.map { meta, _p, _j, _g -> [meta.id, []] }
        versions = channel.empty()
    }
    metrics_in = stores.map { meta, path, json, graph -> [meta.id, meta, path, json, graph] }
        .join(results)
        .join(boots)
        .map { _id, meta, path, json, graph, rs, bs -> [meta, path, json, graph, rs, bs] }
    METRICS(metrics_in, config)

    emit:
    json     = METRICS.out.json
    tsv      = METRICS.out.tsv
    versions = versions.mix(METRICS.out.versions)
}
