// --help without plugins: the parameters of nextflow_schema.json, grouped as there, with types, defaults and
// one-line descriptions. Hidden parameters (help itself, validate_params) are left out, as nf-schema does.
def schemaHelp(schemaFile, manifest) {
    def schema = new groovy.json.JsonSlurper().parse(schemaFile.toFile())
    def groups = schema.allOf.collect { ref -> schema['$defs'][ref['$ref'].tokenize('/').last()] }
    def width = groups.collectMany { g -> g.properties.keySet() as List }*.size().max() + 2
    def lines = [
        "${manifest.name} ${manifest.version}: ${manifest.description}",
        '',
        'Usage: nextflow run main.nf --input <.h5ad | .zarr | samplesheet.csv> --outdir <dir> [options]',
    ]
    groups.each { group ->
        def shown = group.properties.findAll { _name, p -> !p.hidden }
        if (shown) {
            lines << '' << "${group.title}:"
        }
        shown.each { name, p ->
            def types = p.type instanceof List ? p.type.findAll { t -> t != 'null' }.join('|') : p.type
            def notes = name in (group.required ?: []) ? ' (required)' : ''
            if (p.default != null && p.default != '') {
                notes += " (default: ${p.default})"
            }
            lines << "  --${name.padRight(width)}${"[${types}]".padRight(24)}${p.description}${notes}"
        }
    }
    lines << '' << 'Parameters can also come from a YAML or JSON file: -params-file params.yaml. More in README.md.'
    return lines.join('\n')
}
