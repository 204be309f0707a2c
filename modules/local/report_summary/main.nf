include { q } from '../utils'

process REPORT_SUMMARY {
    label 'process_single'

    input:
    path summaries, stageAs: 'summaries/summary*.json'
    val published   // every dataset's PUBLISH: the summary links their folders, so it comes after them

    output:
    path "report.html", emit: html

    script:
    def summaryArgs = summaries instanceof List ? summaries.collect { s -> q(s) }.join(' ') : q(summaries)
    """
    scclust_summary.py --out report.html ${summaryArgs}
    """

    stub:
    """
    touch report.html
    """
}
