/*
 * What MERGE and REPORT need besides the columns to compute a dataset's metrics: with --stability_bootstraps B > 0,
 * the stability of level 1 in rounds of STABILITY tasks (each builds its subgraph once for a batch of resolutions,
 * like CLUSTER), each round summarised once (subworkflows/local/stability.nf); with --hierarchy, one METRICS task
 * scoring levels >= 2 on the whole graph. Level-1 columns come scored from CLUSTER, so a run without either adds no task
 * between clustering and MERGE.
 */

include { STABILITY_ROUNDS } from './stability'
include { METRICS          } from '../../modules/local/metrics'

workflow EVALUATE {
    take:
    stores    // [meta, input, dataset.json, graph store]
    results   // [id, [result files]]: every column of the dataset
    level1    // [id, [CLUSTER's result files]]: the level-1 columns, which the bootstraps re-cluster
    config    // config.json
    plan      // parsed plan.json: algorithms, resolution batches, bootstraps, levels

    main:
    STABILITY_ROUNDS(stores, level1, config, plan)
    stability = stores.combine(plan)
        .filter { _meta, _input, _json, _graph, p -> p.bootstraps == 0 }
        .map { meta, _input, _json, _graph, _p -> [meta.id, []] }
        .mix(STABILITY_ROUNDS.out.stability)
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
    versions   = STABILITY_ROUNDS.out.versions.mix(METRICS.out.versions)
}
