/*
 * Datasets in, validated: the samplesheet (or one path), PREFLIGHT (params and each dataset checked before any
 * heavy task), the batches integrated (--integration) and the kNN graph recomputed where asked.
 */
include { PREFLIGHT } from '../../modules/local/preflight'
include { INTEGRATE } from '../../modules/local/integrate'
include { NEIGHBORS } from '../../modules/local/neighbors'

workflow INPUTS {
    take:
    datasets   // [[meta, path], ...] from readDatasets
    options    // the run's parameters

    main:
    PREFLIGHT(channel.fromList(datasets), groovy.json.JsonOutput.toJson(options), file("${projectDir}/nextflow_schema.json"))
    // Every dataset's PREFLIGHT validates the same params into the same files. The first dataset's by id serves,
    // not the first to finish: -resume must find the same path. Waiting for all of them checks every input first.
    config = firstById(PREFLIGHT.out.config).map { f -> byContent(f) }
    plan = firstById(PREFLIGHT.out.plan).map { f -> new groovy.json.JsonSlurper().parse(f.toFile()) }
    // per tree, the resolution each hierarchy level really uses (column names carry the run's resolution)
    plan.subscribe { p -> p.level_log.each { line -> log.info(line) } }
    described = PREFLIGHT.out.dataset.map { meta, json ->
        new groovy.json.JsonSlurper().parse(json.toFile()).warnings.each { w -> log.warn("${meta.id}: ${w}") }
        [meta.id, byContent(json)]
    }
    prepared = channel.fromList(datasets)
        .map { meta, path -> [meta.id, meta, path] }
        .join(described)
        .map { _id, meta, path, json -> [meta, path, json] }

    // --integration builds the embedding (INTEGRATE) that the graph is then recomputed on
    def integrating = options.integration && options.integration != 'none'
    if (integrating) {
        INTEGRATE(prepared, config)
        reps = INTEGRATE.out.store.map { meta, store -> [meta.id, store] }
        neighbors_in = prepared.map { meta, path, json -> [meta.id, meta, path, json] }
            .join(reps)
            .map { _id, meta, path, json, store -> [meta, path, json, store] }
        versions = PREFLIGHT.out.versions.mix(INTEGRATE.out.versions)
    } else {
        neighbors_in = prepared.map { meta, path, json -> [meta, path, json, []] }
        versions = PREFLIGHT.out.versions
    }

    if (options.recompute_neighbors || integrating) {
        NEIGHBORS(neighbors_in, config)
        graphs = NEIGHBORS.out.graph.map { meta, graph -> [meta.id, graph] }
        stores = prepared.map { meta, path, json -> [meta.id, meta, path, json] }
            .join(graphs)
            .map { _id, meta, path, json, graph -> [meta, path, json, graph] }
    } else {
        stores = prepared.map { meta, path, json -> [meta, path, json, path] }
    }

    emit:
    stores                            // [meta, input, dataset.json, store holding the graph]
    params   = firstById(PREFLIGHT.out.params)   // params.json: the parameters as the user gave them
    config                            // config.json: the validated parameters
    plan                              // parsed plan.json: algorithms, resolution batches, depth, result counts
    versions
}

// The file of the dataset whose id sorts first, from a channel of [meta, file] (a value channel; none when a
// PREFLIGHT failed, so that its own error is the last word).
def firstById(ch) {
    return ch.toSortedList { a, b -> a[0].id <=> b[0].id }.filter { items -> items }.map { items -> items[0][1] }
}

// A copy of a small file at a path named by its content. PREFLIGHT runs again whenever any parameter changes
// (--max_memory raised after an out-of-memory error, another --outdir) and writes the same config into a new
// folder; -resume hashes an input file by its path and mtime, so without this every later task would run again.
def byContent(f) {
    return textFile(f.name, f.text)
}

// A file holding `text`, at a path named by its content (see byContent).
def textFile(name, text) {
    def copy = file("${workflow.workDir}/scclust-inputs/${text.md5()}/${name}")
    // never rewritten: its mtime is part of every later task's hash
    if (!copy.exists()) {
        copy.parent.mkdirs()
        copy.text = text
    }
    return copy
}

// Fails unless --outdir can be created and written: a probe folder is made there and removed, so a read-only
// mount, an immutable folder or another user's folder is named now rather than at PUBLISH, after every task.
def checkOutdir(outdir) {
    def dir = file(outdir.toString()).toAbsolutePath()
    def probe = dir.resolve(".scclust-write-probe-${UUID.randomUUID()}")
    def problem = null
    try {
        java.nio.file.Files.createDirectories(dir)
        java.nio.file.Files.createDirectory(probe)
        probe.resolve('probe').text = 'scclust'
    } catch (Exception err) {
        problem = "${err.class.simpleName}: ${err.message}"
    }
    probe.deleteDir()
    if (problem) {
        error("--outdir ${outdir}: cannot be written (${problem}); pass a folder you can create files in")
    }
}

// [meta, path] per dataset, from one .h5ad/.zarr path or a CSV samplesheet with columns id,path. A result store
// fed back in (`<outdir>/<id>/clustering.zarr`) keeps its dataset id.
def readDatasets(input) {
    if (!input) {
        error("missing required parameter --input: pass an .h5ad, a .zarr or a CSV samplesheet (id,path)")
    }
    def source = file(input.toString())
    if (!source.exists()) {
        error("--input ${input}: no such file or directory; check the path")
    }
    if (!source.name.toLowerCase().endsWith('.csv')) {
        def id = source.name == 'clustering.zarr' ? source.parent?.name : source.name.replaceAll(/\.(h5ad|zarr)\/?$/, '')
        if (!id || id.startsWith('.') || id =~ /[\x00-\x1f]/) {
            error("--input ${input}: the dataset id '${id}' (from the file name) must not be empty, start with '.' or hold control characters; rename the file or use a samplesheet (id,path)")
        }
        return [[[id: id, input: input.toString(), fingerprint: inputFingerprint(source)], source]]
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
        if (id.contains('/') || id == '.' || id == '..' || id.startsWith('.') || id =~ /[\x00-\x1f]/) {
            error("samplesheet ${source} row ${i + 2}: id '${id}' must not contain '/' or control characters, nor start with '.'")
        }
        if (!seen.add(id)) {
            error("samplesheet ${source} row ${i + 2}: id '${id}' is used twice; ids must be unique")
        }
        def dataset = path.startsWith('/') || path.contains('://') ? file(path) : source.parent.resolve(path)
        if (!dataset.exists()) {
            error("samplesheet ${source} row ${i + 2}: ${path} does not exist; fix the path")
        }
        [[id: id, input: path, fingerprint: inputFingerprint(dataset)], dataset]
    }
}

// A digest of every file of a dataset: relative path, size, modification time and status-change time, following
// links (a result store's groups link to its input). It is part of meta, so every task's cache key depends on it:
// Nextflow hashes a staged folder by its own path, size and mtime, which an edit of a chunk inside it leaves alone,
// and ctime (set by the kernel on every write, and by no user tool) shows an edit whose mtime was restored. Object
// stores have no ctime, but an object's time changes whenever it is written.
def inputFingerprint(source) {
    def digest = java.security.MessageDigest.getInstance('SHA-256')
    def local = source.fileSystem == java.nio.file.FileSystems.getDefault()
    def root = local ? source.toRealPath() : source
    def attributes = local ? 'unix:size,lastModifiedTime,ctime' : 'size,lastModifiedTime'
    try {
        java.nio.file.Files.walk(root, java.nio.file.FileVisitOption.FOLLOW_LINKS).withCloseable { files ->
            files.filter { f -> java.nio.file.Files.isRegularFile(f) }.sorted().forEach { f ->
                def a = java.nio.file.Files.readAttributes(f, attributes)
                def line = "${root.relativize(f)}\t${a.size}\t${a.lastModifiedTime}\t${a.ctime ?: ''}\n"
                digest.update(line.getBytes('UTF-8'))
            }
        }
    } catch (Exception err) {
        error("input ${source}: cannot list its files (${err.class.simpleName}: ${err.message}); check that it can be read")
    }
    return digest.digest().encodeHex().toString()
}
