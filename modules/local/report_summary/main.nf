include { q; qAll } from '../utils'

process REPORT_SUMMARY {
    label 'process_single'

    input:
    path summaries, stageAs: 'summaries/summary*.json'
    val published   // every dataset's PUBLISH: the summary links their folders, so it comes after them

    output:
    path "report.html", emit: html

    script:
    """
    scclust_summary.py --out report.html ${qAll(summaries)}
    """

    stub:
    """
    touch report.html
    """
}
