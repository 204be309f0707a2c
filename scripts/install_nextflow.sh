#!/usr/bin/env bash
# Installs Nextflow from Maven Central (the official launcher downloads from a host that is not always reachable)
# and writes a launcher script. Usage: install_nextflow.sh PREFIX  -> PREFIX/bin/nextflow
set -euo pipefail
mkdir -p "${1:?usage: install_nextflow.sh PREFIX}"
prefix=$(cd "$1" && pwd)
version=${NXF_VER_MAVEN:-25.04.4}
jar_dir="$prefix/lib/nextflow"
jar="$jar_dir/nextflow-$version-one.jar"
mkdir -p "$jar_dir" "$prefix/bin"
if [ ! -s "$jar" ]; then
    command -v mvn >/dev/null || { echo "install_nextflow: Maven (mvn) is needed to fetch Nextflow; install it (apt-get install maven) or put nextflow on PATH" >&2; exit 1; }
    command -v java >/dev/null || { echo "install_nextflow: Java 17+ is needed; install it (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
    mvn -q -B dependency:copy "-Dartifact=io.nextflow:nextflow:$version:jar:one" "-DoutputDirectory=$jar_dir" \
        || { echo "install_nextflow: could not fetch io.nextflow:nextflow:$version:jar:one from Maven Central" >&2; exit 1; }
fi
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
exec java -Dfile.encoding=UTF-8 -Djava.awt.headless=true \${NXF_JVM_OPTS:-} "\${opens[@]}" -jar "$jar" "\$@"
LAUNCHER
chmod +x "$prefix/bin/nextflow"
"$prefix/bin/nextflow" -version | grep -q "version $version" || { echo "install_nextflow: $prefix/bin/nextflow does not run" >&2; exit 1; }
