include { q } from '../utils'

process VALIDATE_PARAMS {
    tag "params"
    label 'process_single'

    input:
    path params_in
    path schema

    output:
    path "config.json",  emit: config
    path "versions.yml", emit: versions

    script:
    """
    scclust_validate.py --params ${q(params_in)} --schema ${q(schema)} --out config.json
    """

    stub:
    """
    echo '{}' > config.json
    touch versions.yml
    """
}
