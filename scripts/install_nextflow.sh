#!/usr/bin/env bash
# Installs Nextflow from Maven Central (the official launcher downloads from a host that is not always reachable)
# and writes a launcher script. Usage: install_nextflow.sh PREFIX  -> PREFIX/bin/nextflow
set -euo pipefail
mkdir -p "${1:?usage: install_nextflow.sh PREFIX}"
prefix=$(cd "$1" && pwd)
version=${NXF_VER_MAVEN:-25.04.4}
jar_dir="$prefix/lib/nextflow"
jar="$jar_dir/nextflow-$version-one.jar"
jsa="$jar_dir/nextflow-$version.jsa"
mkdir -p "$jar_dir" "$prefix/bin"
if [ ! -s "$jar" ]; then
    command -v mvn >/dev/null || { echo "install_nextflow: Maven (mvn) is needed to fetch Nextflow; install it (apt-get install maven) or put nextflow on PATH" >&2; exit 1; }
    command -v java >/dev/null || { echo "install_nextflow: Java 17+ is needed; install it (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
    mvn -q -B dependency:copy "-Dartifact=io.nextflow:nextflow:$version:jar:one" "-DoutputDirectory=$jar_dir" \
        || { echo "install_nextflow: could not fetch io.nextflow:nextflow:$version:jar:one from Maven Central" >&2; exit 1; }
    rm -f "$jsa"
fi
# Start-up dominates short runs: the JIT's C2 tier and parallel GC keep both cores of a laptop busy for seconds
# while the first tasks start, and loading ~19k classes from the jar takes more. C1 only, the serial GC and a
# class-data-sharing archive (built below from a small run) halve Nextflow's start-up CPU time (docs/benchmarks.md).
# NXF_JVM_OPTS comes last, so e.g. NXF_JVM_OPTS=-XX:TieredStopAtLevel=4 restores the defaults.
cat > "$prefix/bin/nextflow" <<LAUNCHER
#!/usr/bin/env bash
# Nextflow $version launcher written by scclust's scripts/install_nextflow.sh (offline: no plugins are fetched).
export NXF_HOME="\${NXF_HOME:-\$HOME/.nextflow}"
mkdir -p "\$NXF_HOME"
export NXF_OFFLINE="\${NXF_OFFLINE:-true}" NXF_PLUGINS_DEFAULT=false
unset TOWER_ACCESS_TOKEN JAVA_TOOL_OPTIONS
opens=()
for pkg in java.lang java.io java.nio java.net java.util java.util.concurrent.locks java.util.concurrent.atomic \\
    java.nio.file.spi sun.nio.ch sun.nio.fs sun.net.www.protocol.http sun.net.www.protocol.https \\
    sun.net.www.protocol.ftp sun.net.www.protocol.file jdk.internal.misc jdk.internal.vm java.util.regex; do
    opens+=("--add-opens=java.base/\$pkg=ALL-UNNAMED")
done
cds=()
if [ -s "$jsa" ]; then
    cds=("-XX:SharedArchiveFile=$jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
fi
exec java -Dfile.encoding=UTF-8 -Djava.awt.headless=true -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "\${cds[@]}" \\
    \${NXF_JVM_OPTS:-} "\${opens[@]}" -jar "$jar" "\$@"
LAUNCHER
chmod +x "$prefix/bin/nextflow"
"$prefix/bin/nextflow" -version | grep -q "version $version" || { echo "install_nextflow: $prefix/bin/nextflow does not run" >&2; exit 1; }

if [ ! -s "$jsa" ]; then
    # A small run that uses what pipelines use (includes, labels, publishDir, the usual operators, trace, report
    # and timeline) loads the classes a real run needs into the archive.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/modules"
    cat > "$tmp/modules/train.nf" <<'NF'
process TRAIN {
    tag "${meta.id}"
    label 'small'

    input:
    tuple val(meta), val(x)
    path config

    output:
    tuple val(meta), path('x.txt'), emit: out
    path 'v.yml', emit: versions

    script:
    """
    echo '${x}' > x.txt
    echo 'v: 1' > v.yml
    """

    stub:
    "touch x.txt v.yml"
}
NF
    cat > "$tmp/main.nf" <<'NF'
include { TRAIN } from './modules/train'
include { TRAIN as TRAIN_AGAIN } from './modules/train'

workflow {
    config = channel.value(groovy.json.JsonOutput.toJson(params)).collectFile(name: 'params.json').first()
    items = channel.fromList([[[id: 'a'], 1], [[id: 'b'], 2]])
    TRAIN(items, config)
    keyed = TRAIN.out.out.map { meta, f -> [meta.id, meta, f] }.join(items.map { meta, x -> [meta.id, x] })
    again = keyed.flatMap { _id, meta, f, x -> [[meta + [n: 1], x], [meta + [n: 2], f.text.trim()]] }
    TRAIN_AGAIN(again, config)
    TRAIN_AGAIN.out.out.map { meta, f -> [groupKey(meta.id, 2), f] }.groupTuple()
        .combine(channel.of('z')).unique().map { id, fs, _z -> "${id} ${fs.size()}" }.view()
    TRAIN.out.versions.mix(TRAIN_AGAIN.out.versions).map { f -> f.text }.unique()
        .collectFile(name: 'versions.yml', storeDir: "${params.outdir}/info", sort: true)
}
NF
    cat > "$tmp/nextflow.config" <<'NF'
params { outdir = 'out'; flag = false }
process {
    cpus = 1
    withLabel: 'small' { memory = { 1.GB * task.attempt } }
    errorStrategy = { task.exitStatus in [137, 140] ? 'retry' : 'terminate' }
    publishDir = [path: { "${params.outdir}/${task.process.tokenize(':')[-1].toLowerCase()}" }, mode: 'copy']
}
profiles { quick { process.memory = 1.GB } }
NF
    if (cd "$tmp" && NXF_HOME="$tmp/home" NXF_JVM_OPTS="-XX:ArchiveClassesAtExit=$tmp/nf.jsa" \
        "$prefix/bin/nextflow" -q run main.nf -profile quick -with-trace -with-report -with-timeline >/dev/null 2>"$tmp/err") \
        && [ -s "$tmp/nf.jsa" ]; then
        mv "$tmp/nf.jsa" "$jsa"
    else
        echo "install_nextflow: no class-data archive (Nextflow still works, it only starts slower): $(tail -1 "$tmp/err")" >&2
    fi
fi
