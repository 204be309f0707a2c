/*
 * Per-column metrics of every dataset and, with --stability_bootstraps B > 0, the bootstrap stability of level 1:
 * B x algorithms x resolution batches STABILITY tasks (each builds its subgraph once for a batch of resolutions,
 * like CLUSTER), then one METRICS task per dataset once all its results and bootstraps are in.
 */

include { STABILITY } from '../../modules/local/stability'
include { METRICS   } from '../../modules/local/metrics'

workflow EVALUATE {
    take:
    stores    // [meta, input, dataset.json, graph store]
    results   // [id, [result files]]: every column of the dataset
    config    // config.json
    plan      // parsed plan.json: algorithms, resolution batches, bootstraps

    main:
    tasks = stores.combine(plan).flatMap { meta, _input, json, graph, p ->
        (0..<p.bootstraps).collectMany { b ->
            p.algorithms.collectMany { algorithm -> p.batches.collect { indices -> [meta, graph, json, algorithm, indices, b] } }
        }
    }
    STABILITY(tasks, config)
    // a dataset's bootstrap files, or [] without bootstraps (groupTuple would wait for none forever)
    boots = stores.combine(plan)
        .filter { _meta, _input, _json, _graph, p -> p.bootstraps == 0 }
        .map { meta, _input, _json, _graph, _p -> [meta.id, []] }
        .mix(
            STABILITY.out.bootstrap.combine(plan)
                .map { meta, f, p -> [groupKey(meta.id, p.bootstraps * p.algorithms.size() * p.batches.size()), f] }
                .groupTuple()
                .map { id, fs -> [id.toString(), fs.sort { f -> f.toString() }] }
        )
    metrics_in = stores.map { meta, path, json, graph -> [meta.id, meta, path, json, graph] }
        .join(results)
        .join(boots)
        .map { _id, meta, path, json, graph, rs, bs -> [meta, path, json, graph, rs, bs] }
    METRICS(metrics_in, config)

    emit:
    json     = METRICS.out.json
    tsv      = METRICS.out.tsv
    versions = STABILITY.out.versions.mix(METRICS.out.versions)
}
