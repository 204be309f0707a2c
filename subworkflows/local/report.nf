/*
 * Per dataset: report.html, plots/ and MultiQC files (REPORT), and summary.json for the summary across datasets
 * (REPORT_SUMMARY, which workflows/scclust.nf runs after PUBLISH).
 */
include { REPORT } from '../../modules/local/report'

workflow REPORTS {
    take:
    inputs      // [meta, input, dataset.json, [result.npz ...], umap.npz or []]
    evaluation  // [meta.id, column_metrics.json or [], stability.json or []]: the rest of what the metrics need
    markers     // [meta.id, markers.npz or []]
    config
    run_info
    params_json // the run's parameters (PREFLIGHT's params.json), every one of which the report lists

    main:
    report_in = inputs.map { meta, path, json, rs, u -> [meta.id, meta, path, json, rs, u] }
        .join(evaluation)
        .join(markers)
        .map { _id, meta, path, json, rs, u, scored, st, m -> [meta, path, json, rs, u, scored, st, m] }
    REPORT(report_in, config, params_json, run_info)

    emit:
    outputs   = REPORT.out.html.mix(REPORT.out.plots, REPORT.out.multiqc.transpose())   // [meta, file or dir] to publish
    summaries = REPORT.out.summary.map { _meta, s -> s }.collect(sort: true)
    versions  = REPORT.out.versions
}
