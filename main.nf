#!/usr/bin/env nextflow
/*
 * scclust: multi-resolution and hierarchical clustering of single-cell data.
 * The Python library (src/scclust) holds the logic; this file only wires channels.
 */

include { PREFLIGHT       } from './modules/local/preflight'
include { INTEGRATE       } from './modules/local/integrate'
include { NEIGHBORS       } from './modules/local/neighbors'
include { CLUSTER         } from './modules/local/cluster'
include { SPLIT_LEVEL     } from './modules/local/split_level'
include { SUBCLUSTER      } from './modules/local/subcluster'
include { COLLECT_LEVEL   } from './modules/local/collect_level'
include { UMAP            } from './modules/local/umap'
include { MERGE           } from './modules/local/merge'
include { PLOTS           } from './modules/local/plots'

// [meta, path] per dataset, from one .h5ad/.zarr path or a CSV samplesheet with columns id,path.
def readDatasets(input) {
    if (!input) {
        error("missing required parameter --input: pass an .h5ad, a .zarr or a CSV samplesheet (id,path)")
    }
    def source = file(input.toString())
    if (!source.exists()) {
        error("--input ${input}: no such file or directory; check the path")
    }
    if (!source.name.toLowerCase().endsWith('.csv')) {
        return [[[id: source.name.replaceAll(/\.(h5ad|zarr)\/?$/, '')], source]]
    }
    def rows = source.splitCsv(header: true)
    if (!rows || !rows[0].containsKey('id') || !rows[0].containsKey('path')) {
        error("samplesheet ${source}: needs a header line 'id,path' and at least one row")
    }
    def seen = [] as Set
    return rows.withIndex().collect { row, i ->
        def id = row.id?.trim()
        def path = row.path?.trim()
        if (!id || !path) {
            error("samplesheet ${source} row ${i + 2}: id and path must both be set")
        }
        if (id.contains('/') || id == '.' || id == '..' || id =~ /[\x00-\x1f]/) {
            error("samplesheet ${source} row ${i + 2}: id '${id}' must not contain '/' or control characters, nor be '.' or '..'")
        }
        if (!seen.add(id)) {
            error("samplesheet ${source} row ${i + 2}: id '${id}' is used twice; ids must be unique")
        }
        def dataset = path.startsWith('/') || path.contains('://') ? file(path) : source.parent.resolve(path)
        if (!dataset.exists()) {
            error("samplesheet ${source} row ${i + 2}: ${path} does not exist; fix the path")
        }
        [[id: id], dataset]
    }
}

// Number of levels in --hierarchy: absent -> 1, an integer, or the largest key of a level mapping.
def hierarchyDepth(hierarchy) {
    if (hierarchy == null || hierarchy == false || hierarchy.toString().trim() in ['', 'null']) {
        return 1
    }
    def value = hierarchy instanceof Map ? hierarchy : new groovy.yaml.YamlSlurper().parseText(hierarchy.toString())
    if (value instanceof Map) {
        return value.keySet().collect { k -> k.toString().toInteger() }.max()
    }
    return value.toString().toInteger()
}

workflow {
    def datasets = readDatasets(params.input)
    def algorithms = params.algorithm.toString().tokenize(',')*.trim()
    def nResolutions = params.resolutions instanceof List ? params.resolutions.size() : params.resolutions.toString().tokenize(',').size()
    def perTask = params.resolutions_per_task as int
    def depth = hierarchyDepth(params.hierarchy)
    // Level-1 tasks: each clusters up to resolutions_per_task resolutions with the graph built once. Resolutions
    // are dealt round-robin (0,2,4 / 1,3,5), so each task gets a mix of slow low and fast high resolutions.
    def nBatches = Math.ceil(nResolutions / perTask) as int
    def batches = (0..<nBatches).collect { b -> (b..<nResolutions).step(nBatches).join(',') }

    params_in = channel.value(groovy.json.JsonOutput.toJson(params)).collectFile(name: 'params.json').first()
    PREFLIGHT(channel.fromList(datasets), params_in, file("${projectDir}/nextflow_schema.json"))
    // every dataset's preflight validates the same params into the same config; any one serves
    config = PREFLIGHT.out.config.first()
    inputs = channel.fromList(datasets).map { meta, path -> [meta.id, meta, path] }
    described = PREFLIGHT.out.dataset.map { meta, json -> [meta.id, json] }
    prepared = inputs.join(described).map { _id, meta, path, json -> [meta, path, json] }

    // --integration builds the embedding (INTEGRATE) that the graph is then recomputed on
    def integrating = params.integration && params.integration != 'none'
    if (integrating) {
        INTEGRATE(prepared, config)
        reps = INTEGRATE.out.store.map { meta, store -> [meta.id, store] }
        neighbors_in = prepared.map { meta, path, json -> [meta.id, meta, path, json] }.join(reps)
            .map { _id, meta, path, json, store -> [meta, path, json, store] }
    } else {
        neighbors_in = prepared.map { meta, path, json -> [meta, path, json, []] }
    }

    if (params.recompute_neighbors || integrating) {
        NEIGHBORS(neighbors_in, config)
        graphs = NEIGHBORS.out.graph.map { meta, graph -> [meta.id, graph] }
        stores = prepared.map { meta, path, json -> [meta.id, meta, path, json] }.join(graphs)
            .map { _id, meta, path, json, graph -> [meta, path, json, graph] }
    } else {
        stores = prepared.map { meta, path, json -> [meta, path, json, path] }
    }

    cluster_tasks = stores.flatMap { meta, _path, json, graph ->
        algorithms.collectMany { algorithm ->
            batches.collect { idx -> [meta + [level: 1], graph, json, algorithm, idx] }
        }
    }
    CLUSTER(cluster_tasks, config)
    level1 = CLUSTER.out.result

    if (depth > 1) {
        def nLevelResults = datasets.size() * algorithms.size() * nResolutions * (depth - 1)
        feedback = channel.topic('scclust_levels').take(nLevelResults)
        SPLIT_LEVEL(level1.mix(feedback).filter { meta, _r -> meta.level < depth }, config, params.subcluster_batch_cells)
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
            .map { _key, metas, ps -> [metas[0].id, metas[0], ps.sort { p -> p.name }] }
        parents = by_column.map { _id, meta, result, _f -> ["${meta.id}\u0000${meta.column}", result] }.unique()
        json_by_id = stores.map { meta, _p, json, _g -> [meta.id, json] }
        collect_in = parts
            .map { _id, meta, ps -> ["${meta.id}\u0000${meta.column}", meta, ps] }
            .join(parents)
            .map { _k, meta, ps, parent -> [meta.id, meta, parent, ps] }
            .combine(json_by_id, by: 0)
            .map { _id, meta, parent, ps, json -> [meta, parent, ps, json] }
        COLLECT_LEVEL(collect_in, config)
        results = level1.mix(channel.topic('scclust_levels'))
    } else {
        results = level1
    }

    def nResults = algorithms.size() * (batches.size() + nResolutions * (depth - 1))
    grouped = results
        .map { meta, result -> [groupKey(meta.id, nResults), result] }
        .groupTuple()
        .map { id, rs -> [id.toString(), rs.sort { r -> r.toString() }] }

    if (params.recompute_umap) {
        UMAP(stores.map { meta, path, json, graph -> [meta, path, graph, json] }, config)
        umaps = UMAP.out.umap.map { meta, u -> [meta.id, u] }
    } else {
        umaps = stores.map { meta, _p, _j, _g -> [meta.id, []] }
    }
    merge_in = stores.map { meta, path, json, graph -> [meta.id, meta, path, json, params.recompute_neighbors || integrating ? graph : []] }
        .join(grouped)
        .join(umaps)
        .map { _id, meta, path, json, graph, rs, u -> [meta, path, json, rs, graph, u] }

    run_info = channel.value(groovy.json.JsonOutput.toJson([
        pipeline: workflow.manifest.name,
        version: workflow.manifest.version,
        command_line: workflow.commandLine,
        nextflow: nextflow.version.toString(),
        profile: workflow.profile,
    ])).collectFile(name: 'run_info.json').first()
    MERGE(merge_in, config, run_info)

    plot_in = merge_in
        .filter { _meta, _path, json, _rs, _graph, _u -> params.recompute_umap || params.umap_colors || hasUmap(json) }
        .map { meta, path, json, rs, _graph, u -> [meta, path, json, rs, u] }
    PLOTS(plot_in, config)

    // Every task runs the same image, so one copy of each distinct versions.yml is enough.
    PREFLIGHT.out.versions.mix(CLUSTER.out.versions, MERGE.out.versions, integrating ? INTEGRATE.out.versions : channel.empty())
        .map { f -> f.text }
        .unique()
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true, newLine: false)
    channel.value(groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(params)))
        .collectFile(name: 'params.json', storeDir: "${params.outdir}/pipeline_info")
    config.map { f -> f.text }.collectFile(name: 'scclust_config.json', storeDir: "${params.outdir}/pipeline_info")
}

def hasUmap(json) {
    return new groovy.json.JsonSlurper().parse(json.toFile()).umap_in_input
}
