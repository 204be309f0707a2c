/*
 * Stability of level 1 in rounds (scclust.stability_rounds): round 1 bootstraps every (algorithm, resolution);
 * each later round only the columns the previous STABILITY_SUMMARY left unsettled, up to --stability_bootstraps.
 * The plan's rounds are at most four (scclust.stability_rounds.MAX_ROUNDS): one with --stability_adaptive false.
 */
include { STABILITY_ROUND as ROUND_1 } from './stability_round'
include { STABILITY_ROUND as ROUND_2 } from './stability_round'
include { STABILITY_ROUND as ROUND_3 } from './stability_round'
include { STABILITY_ROUND as ROUND_4 } from './stability_round'

workflow STABILITY_ROUNDS {
    take:
    stores   // [meta, input, dataset.json, graph store]
    level1   // [id, [CLUSTER's result files]]
    config
    plan

    main:
    start = stores.combine(plan)
        .filter { _meta, _input, _json, _graph, p -> p.bootstraps > 0 }
        .map { meta, _input, json, graph, _p -> [meta.id, meta, graph, json] }
        .join(level1)
        .map { id, meta, graph, json, rs -> [id, meta, graph, json, rs, []] }
    ROUND_1(start, plan, config, 1)
    ROUND_2(ROUND_1.out.carry, plan, config, 2)
    ROUND_3(ROUND_2.out.carry, plan, config, 3)
    ROUND_4(ROUND_3.out.carry, plan, config, 4)

    emit:
    stability = ROUND_4.out.carry.map { id, _meta, _graph, _json, _rs, summary -> [id, summary.find { f -> f.name.endsWith('.json') }] }
    versions  = ROUND_1.out.versions.mix(ROUND_2.out.versions, ROUND_3.out.versions, ROUND_4.out.versions)
}
