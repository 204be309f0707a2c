/*
 * scclust, per dataset: inputs -> level 1 (scored as it clusters) -> hierarchy -> stability and deeper levels'
 * metrics, beside the marker genes of every column -> merge into one zarr, with the report beside it -> publish.
 * The fan-out (algorithms, resolution batches, depth, result counts) comes from PREFLIGHT's validated plan.
 */
include { INPUTS; checkOutdir; readDatasets; textFile } from '../subworkflows/local/inputs'
include { LEVEL1               } from '../subworkflows/local/level1'
include { HIERARCHY            } from '../subworkflows/local/hierarchy'
include { EVALUATE             } from '../subworkflows/local/evaluate'
include { UMAP                 } from '../modules/local/umap'
include { MERGE                } from '../modules/local/merge'
include { MARKER_GENES         } from '../subworkflows/local/markers'
include { REPORTS              } from '../subworkflows/local/report'
include { REPORT_SUMMARY       } from '../modules/local/report_summary'
include { PUBLISH              } from '../modules/local/publish'

workflow SCCLUST {
    take:
    options   // the run's parameters; PREFLIGHT validates them before any task depends on them

    main:
    if (!options.outdir) {
        error("missing required parameter --outdir: pass the folder the results go to")
    }
    checkOutdir(options.outdir)
    def datasets = readDatasets(options.input)
    INPUTS(datasets, options)
    stores = INPUTS.out.stores
    config = INPUTS.out.config
    plan = INPUTS.out.plan

    LEVEL1(stores, config, plan)
    HIERARCHY(LEVEL1.out.results, stores, config, plan, datasets.size())
    grouped = LEVEL1.out.results.mix(HIERARCHY.out.results)
        .combine(plan)
        .map { meta, result, p -> [groupKey(meta.id, p.n_results), result] }
        .groupTuple()
        .map { id, rs -> [id.toString(), rs.sort { r -> r.toString() }] }

    if (options.recompute_umap) {
        UMAP(stores.map { meta, path, json, graph -> [meta, path, graph, json] }, config)
        umaps = UMAP.out.umap.map { meta, u -> [meta.id, u] }
    } else {
        umaps = stores.map { meta, _p, _j, _g -> [meta.id, []] }
    }
    def graphRecomputed = options.recompute_neighbors || (options.integration && options.integration != 'none')
    merge_in = stores.map { meta, path, json, graph -> [meta.id, meta, path, json, graphRecomputed ? graph : []] }
        .join(grouped)
        .join(umaps)
        .map { _id, meta, path, json, graph, rs, u -> [meta, path, json, rs, graph, u] }
    // at a path named by its content, and without -resume (which changes no result): MERGE and REPORT stay cached
    // when a run is resumed
    run_info = channel.value(textFile('run_info.json', groovy.json.JsonOutput.toJson([
        pipeline: workflow.manifest.name,
        version: workflow.manifest.version,
        command_line: workflow.commandLine.replaceAll(/\s-resume(\s+([0-9a-f]{8}-[0-9a-f-]{27}|[a-z]+_[a-z]+))?(?=\s|$)/, ''),
        nextflow: nextflow.version.toString(),
        profile: workflow.profile,
    ])))
    level1 = LEVEL1.out.results.combine(plan)
        .map { meta, result, p -> [groupKey(meta.id, p.algorithms.size() * p.batches.size()), result] }
        .groupTuple()
        .map { id, rs -> [id.toString(), rs.sort { r -> r.toString() }] }
    EVALUATE(stores, grouped, level1, config, plan)
    // marker genes of every column, beside EVALUATE; MERGE and REPORT wait for them (--markers false: none)
    if (options.markers) {
        MARKER_GENES(merge_in.map { meta, path, json, rs, _graph, _u -> [meta, path, json, rs] }, config)
        markers = MARKER_GENES.out.npz.map { meta, npz -> [meta.id, npz] }
        markers_out = MARKER_GENES.out.tsv
        markers_versions = MARKER_GENES.out.versions
    } else {
        markers = stores.map { meta, _p, _j, _g -> [meta.id, []] }
        markers_out = channel.empty()
        markers_versions = channel.empty()
    }
    MERGE(
        merge_in.map { meta, path, json, rs, graph, u -> [meta.id, meta, path, json, rs, graph, u] }
            .join(EVALUATE.out.evaluation)
            .join(markers)
            .map { _id, meta, path, json, rs, graph, u, scored, st, m -> [meta, path, json, rs, graph, u, scored, st, m] },
        config,
        run_info,
    )

    REPORTS(
        merge_in.map { meta, path, json, rs, _graph, u -> [meta, path, json, rs, u] },
        EVALUATE.out.evaluation,
        markers,
        config,
        run_info,
        INPUTS.out.params,
    )

    // Everything a dataset gets is published together, once every dataset of the run is complete, and replaces
    // the dataset's earlier folder as a whole (see modules/local/publish).
    outputs = MERGE.out.zarr.mix(MERGE.out.tsv, MERGE.out.metrics, markers_out, REPORTS.out.outputs)
        .map { meta, item -> [meta.id, meta, item] }
        .groupTuple()
        .map { _id, metas, items -> [metas[0], items] }
    PUBLISH(outputs, file(options.outdir).toAbsolutePath().toString())
    // a signal once every dataset is published, the same whatever order they finished in
    published = PUBLISH.out.done.collect().map { _metas -> true }
    if (datasets.size() > 1) {
        // <outdir>/report.html across datasets, only once all are published (a failed run leaves the old one)
        REPORT_SUMMARY(REPORTS.out.summaries, published)
    }

    // pipeline_info describes the published results, so a failed run leaves the earlier run's files. Every task
    // runs the same image, so one copy of each distinct versions.yml is enough.
    INPUTS.out.versions.mix(LEVEL1.out.versions, EVALUATE.out.versions, markers_versions, MERGE.out.versions, REPORTS.out.versions)
        .map { f -> f.text }
        .unique()
        .combine(published)
        .map { text, _done -> text }
        .collectFile(name: 'software_versions.yml', storeDir: "${options.outdir}/pipeline_info", sort: true, newLine: false)
    channel.value(groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(options)))
        .combine(published)
        .map { text, _done -> text }
        .collectFile(name: 'params.json', storeDir: "${options.outdir}/pipeline_info")
    config.combine(published)
        .map { f, _done -> f.text }
        .collectFile(name: 'scclust_config.json', storeDir: "${options.outdir}/pipeline_info")
}
