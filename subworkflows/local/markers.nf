/*
 * Marker genes of every column of a dataset, from one pass over its expression matrix. A matrix of more than
 * --markers_task_entries stored values is split (PREFLIGHT's markers.parts: row ranges, or gene ranges of a CSC
 * matrix) over MARKERS_SUMS tasks, whose exact integer sums MARKERS adds up; a smaller one is one MARKERS task.
 */

include { MARKERS_SUMS } from '../../modules/local/markers_sums'
include { MARKERS      } from '../../modules/local/markers'

workflow MARKER_GENES {
    take:
    inputs    // [meta, input, dataset.json, [result files]]: every column of the dataset
    config    // config.json

    main:
    split = inputs
        .map { meta, path, json, rs -> [meta, path, json, rs, new groovy.json.JsonSlurper().parse(json.toFile()).markers.parts.size()] }
        .branch { _meta, _path, _json, _rs, n ->
            parts: n > 1
            whole: true
        }
    MARKERS_SUMS(split.parts.flatMap { meta, path, json, rs, n -> (0..<n).collect { k -> [meta, path, json, rs, k] } }, config)
    sums = MARKERS_SUMS.out.sums
        .map { meta, fs -> [meta.id, fs] }
        .combine(split.parts.map { meta, _path, _json, _rs, n -> [meta.id, n] }, by: 0)
        .map { id, f, n -> [groupKey(id, n), f] }
        .groupTuple()
        .map { id, fs -> [id.toString(), fs.flatten().sort { f -> f.toString() }] }
    MARKERS(
        split.whole.map { meta, path, json, rs, _n -> [meta, path, json, rs, []] }
            .mix(
                split.parts.map { meta, path, json, rs, _n -> [meta.id, meta, path, json, rs] }
                    .join(sums)
                    .map { _id, meta, path, json, rs, fs -> [meta, path, json, rs, fs] }
            ),
        config,
    )

    emit:
    npz      = MARKERS.out.npz    // [meta, markers.npz]
    tsv      = MARKERS.out.tsv    // [meta, markers.tsv]
    versions = MARKERS_SUMS.out.versions.mix(MARKERS.out.versions)
}
