/*
 * One round of stability (subworkflows/local/stability.nf): the round's bootstraps of the columns the previous
 * round left unsettled, then STABILITY_SUMMARY. A dataset with nothing left to do passes through unchanged.
 */
include { STABILITY         } from '../../modules/local/stability'
include { STABILITY_SUMMARY } from '../../modules/local/stability_summary'

// A dataset's STABILITY tasks in this round. Round 1: every column, bootstraps 0 up to the first target, in the
// plan's resolution batches. A later round: the columns the previous summary left unsettled, each group from its
// columns' bootstrap count (a column settled earlier and open again needs the ones it skipped) up to this round's
// target, packed into as few batches of at most the plan's size (round-robin, as the plan's), so each task still
// builds its subgraph once.
def roundTasks(p, round, previous) {
    if (round > p.rounds.size()) {
        return []
    }
    def target = p.rounds[round - 1]
    if (round == 1) {
        return (0..<target).collectMany { b ->
            p.algorithms.collectMany { algorithm -> p.batches.collect { indices -> [algorithm, indices, b] } }
        }
    }
    def groups = new groovy.json.JsonSlurper().parse(previous.find { f -> f.name.endsWith('.json') }.toFile()).pending_batches
    def size = p.batches.collect { b -> b.split(',').size() }.max()
    return p.algorithms.collectMany { algorithm ->
        groups[algorithm].collectMany { start, indices ->
            def batches = packed(indices, size)
            (start..<target).collectMany { b -> batches.collect { ix -> [algorithm, ix, b] } }
        }
    }
}

// `indices` dealt round-robin into the fewest batches of at most `size` each, as comma lists
def packed(indices, size) {
    def n = indices.size().intdiv(size) + (indices.size() % size ? 1 : 0)
    return (0..<n).collect { k -> (k..<indices.size()).step(n).collect { j -> indices[j] }.join(',') }
}

workflow STABILITY_ROUND {
    take:
    carry    // [id, meta, graph store, dataset.json, [level-1 results], [stability.json, stability.npz] or []]
    plan
    config
    round    // 1-based

    main:
    todo = carry.combine(plan)
        .map { id, meta, graph, json, rs, previous, p -> [id, meta, graph, json, rs, previous, roundTasks(p, round, previous)] }
        .branch { _id, _meta, _graph, _json, _rs, _previous, tasks ->
            run: tasks
            idle: true
        }
    STABILITY(
        todo.run.flatMap { _id, meta, graph, json, _rs, _previous, tasks ->
            tasks.collect { algorithm, indices, b -> [meta, graph, json, algorithm, indices, b] }
        },
        config,
    )
    counts = todo.run.map { id, _meta, _graph, _json, _rs, _previous, tasks -> [id, tasks.size()] }
    files = STABILITY.out.bootstrap.map { meta, f -> [meta.id, f] }
        .combine(counts, by: 0)
        .map { id, f, n -> [groupKey(id, n), f] }
        .groupTuple()
        .map { id, fs -> [id.toString(), fs.sort { f -> f.toString() }] }
    summary_in = todo.run.map { id, meta, graph, json, rs, previous, _tasks -> [id, meta, graph, json, rs, previous] }
        .join(files)
    STABILITY_SUMMARY(summary_in.map { _id, meta, _graph, json, rs, previous, fs -> [meta, json, rs, previous, fs, round] }, config)
    summarised = STABILITY_SUMMARY.out.summary.map { meta, doc, state -> [meta.id, [doc, state]] }
        .join(summary_in.map { id, meta, graph, json, rs, _previous, _fs -> [id, meta, graph, json, rs] })
        .map { id, summary, meta, graph, json, rs -> [id, meta, graph, json, rs, summary] }

    emit:
    carry    = todo.idle.map { id, meta, graph, json, rs, previous, _tasks -> [id, meta, graph, json, rs, previous] }.mix(summarised)
    versions = STABILITY.out.versions.mix(STABILITY_SUMMARY.out.versions)
}
