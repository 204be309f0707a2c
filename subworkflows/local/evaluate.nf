/*
 * What MERGE and REPORT need besides the columns to compute a dataset's metrics: with --stability_bootstraps B > 0,
 * B x algorithms x resolution batches STABILITY tasks (each builds its subgraph once for a batch of resolutions,
 * like CLUSTER) and one STABILITY_SUMMARY reading them all once; with --hierarchy, one METRICS task scoring
 * levels >= 2 on the whole graph. Level-1 columns come scored from CLUSTER, so a run without either adds no task
 * between clustering and MERGE.
 */

include { STABILITY         } from '../../modules/local/stability'
include { STABILITY_SUMMARY } from '../../modules/local/stability_summary'
include { METRICS           } from '../../modules/local/metrics'

workflow EVALUATE {
    take:
    stores    // [meta, input, dataset.json, graph store]
    results   // [id, [result files]]: every column of the dataset
    level1    // [id, [CLUSTER's result files]]: the level-1 columns, which the bootstraps re-cluster
    config    // config.json
    plan      // parsed plan.json: algorithms, resolution batches, bootstraps, levels

    main:
    tasks = stores.combine(plan).flatMap { meta, _input, json, graph, p ->
        (0..<p.bootstraps).collectMany { b ->
            p.algorithms.collectMany { algorithm -> p.batches.collect { indices -> [meta, graph, json, algorithm, indices, b] } }
        }
    }
    STABILITY(tasks, config)
    // per dataset, stability.json, or [] without bootstraps
    boots = STABILITY.out.bootstrap.combine(plan)
        .map { meta, f, p -> [groupKey(meta.id, p.bootstraps * p.algorithms.size() * p.batches.size()), meta, f] }
        .groupTuple()
        .map { id, metas, fs -> [id.toString(), metas[0], fs.sort { f -> f.toString() }] }
    json_by_id = stores.map { meta, _input, json, _graph -> [meta.id, json] }
    summary_in = boots.join(json_by_id).join(level1)
        .map { _id, meta, fs, json, rs -> [meta, json, rs, fs] }
    STABILITY_SUMMARY(summary_in, config)
    stability = stores.combine(plan)
        .filter { _meta, _input, _json, _graph, p -> p.bootstraps == 0 }
        .map { meta, _input, _json, _graph, _p -> [meta.id, []] }
        .mix(STABILITY_SUMMARY.out.json.map { meta, f -> [meta.id, f] })
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
    evaluation = scored.join(stability)   // [meta.id, column_metrics.json or [], stability.json or []]
    versions   = STABILITY.out.versions.mix(STABILITY_SUMMARY.out.versions, METRICS.out.versions)
}
