/*
 * What the input fingerprint (subworkflows/local/inputs.nf) costs at launch:
 *   nextflow run benchmarks/fingerprint.nf --store atlas.zarr --repeats 3
 * Prints the number of files and the time of each call; the first call may find the file metadata uncached.
 */
include { inputFingerprint } from '../subworkflows/local/inputs'

workflow {
    def store = file(params.store)
    def count = java.nio.file.Files.walk(store.toRealPath(), java.nio.file.FileVisitOption.FOLLOW_LINKS)
        .withCloseable { files -> files.filter { f -> java.nio.file.Files.isRegularFile(f) }.count() }
    (1..(params.repeats ?: 3).toInteger()).each { i ->
        def started = System.nanoTime()
        def fingerprint = inputFingerprint(store)
        def seconds = String.format('%.2f', (System.nanoTime() - started) / 1e9)
        println("call ${i}: ${count} files, ${seconds} s, ${fingerprint.take(16)}")
    }
}
