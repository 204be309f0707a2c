include { q } from '../utils'

process REPORT_SUMMARY {
    label 'process_single'

    input:
    path summaries, stageAs: 'summaries/summary*.json'

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
