/*
 * What MERGE and REPORT need besides the columns to compute a dataset's metrics: with --stability_bootstraps B > 0,
 * B x algorithms x resolution batches STABILITY tasks (each builds its subgraph once for a batch of resolutions,
 * like CLUSTER); with --hierarchy, one METRICS task scoring levels >= 2 on the whole graph. Level-1 columns come
 * scored from CLUSTER, so a run without either adds no task between clustering and MERGE.
 */

include { STABILITY } from '../../modules/local/stability'
include { METRICS   } from '../../modules/local/metrics'

workflow EVALUATE {
    take:
    stores    // [meta, input, dataset.json, graph store]
    results   // [id, [result files]]: every column of the dataset
    config    // config.json
    plan      // parsed plan.json: algorithms, resolution batches, bootstraps, levels

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
    hierarchy = stores.combine(plan)
        .map { meta, path, json, graph, p -> [meta.id, meta, path, json, graph, p.n_level_results > 0] }
        .join(results)
        .branch { _id, _meta, _path, _json, _graph, deeper, _rs ->
            deeper: deeper
            flat: true
        }
    METRICS(hierarchy.deeper.map { _id, meta, path, json, graph, _d, rs -> [meta, path, json, graph, rs] }, config)
    scored = METRICS.out.json.map { meta, f -> [meta.id, f] }
        .mix(hierarchy.flat.map { id, _meta, _path, _json, _graph, _d, _rs -> [id, []] })

    emit:
    evaluation = scored.join(boots)   // [meta.id, column_metrics.json or [], [bootstrap files]]
    versions   = STABILITY.out.versions.mix(METRICS.out.versions)
}
