/*
 * Levels 2..depth: every cluster of a level re-clustered on its own cells. Levels run in sequence, clusters in
 * parallel (SUBCLUSTER per batch of parent clusters). A topic channel feeds each collected level back in; the
 * loop closes once the plan's count of level results has come round (a sentinel ends the feedback channel,
 * because the count is only known after PREFLIGHT has validated the parameters).
 */
include { SPLIT_LEVEL   } from '../../modules/local/split_level'
include { SUBCLUSTER    } from '../../modules/local/subcluster'
include { COLLECT_LEVEL } from '../../modules/local/collect_level'

workflow HIERARCHY {
    take:
    level1       // [meta, result.npz]
    stores       // [meta, input, dataset.json, graph store]
    config
    plan
    n_datasets

    main:
    def done = 'scclust: every level collected'
    def seen = [n: 0]
    feedback = channel.topic('scclust_levels')
        .combine(plan)
        .flatMap { meta, result, p -> ++seen.n < n_datasets * p.n_level_results ? [[meta, result]] : [[meta, result], done] }
        .mix(plan.filter { p -> p.n_level_results == 0 }.map { done })
        .until { item -> item == done }

    SPLIT_LEVEL(level1.mix(feedback).filter { meta, _r -> meta.level < meta.depth }, config)
    by_column = SPLIT_LEVEL.out.batches.flatMap { meta, result, files ->
        def list = files instanceof List ? files : [files]
        def columns = list.groupBy { f -> f.name.replaceAll(/\.\d+\.json$/, '') }
        columns.collectMany { column, fs ->
            fs.collect { f -> [meta.id, meta + [column: column, level: meta.level + 1, n_batches: fs.size()], result, f] }
        }
    }
    store_by_id = stores.map { meta, path, _json, graph -> [meta.id, path, graph] }
    SUBCLUSTER(
        by_column.combine(store_by_id, by: 0).map { _id, meta, result, batch, path, graph -> [meta, result, batch, path, graph] },
        config,
    )
    parts = SUBCLUSTER.out.part
        .map { meta, part -> [groupKey("${meta.id}\u0000${meta.column}", meta.n_batches), meta, part] }
        .groupTuple()
        .map { key, metas, ps -> [key.toString(), metas[0], ps.sort { p -> p.name }] }
    parents = by_column.map { _id, meta, result, _f -> ["${meta.id}\u0000${meta.column}".toString(), result] }.unique()
    json_by_id = stores.map { meta, _p, json, _g -> [meta.id, json] }
    collect_in = parts
        .join(parents)
        .map { _k, meta, ps, parent -> [meta.id, meta, parent, ps] }
        .combine(json_by_id, by: 0)
        .map { _id, meta, parent, ps, json -> [meta, parent, ps, json] }
    COLLECT_LEVEL(collect_in, config)

    emit:
    results  = channel.topic('scclust_levels')   // [meta, result.npz], one column each, levels 2..depth
    versions = SUBCLUSTER.out.versions
}
