#!/usr/bin/env bash
# Builds the CPU image for CI from the local base made by podman_setup.sh. The image carries a label with a hash of
# its inputs, so reruns with unchanged inputs skip the (minutes-long) build.
# Usage: build_cpu_image.sh   (env: IMAGE, default localhost/scclust-cpu:0.1.0; BASE, default localhost/debian:bookworm)
set -euo pipefail

image=${IMAGE:-localhost/scclust-cpu:0.1.0}
base=${BASE:-localhost/debian:bookworm}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

command -v podman >/dev/null || { echo "build_cpu_image: podman not found; run scripts/ci/podman_setup.sh first" >&2; exit 1; }
podman image exists "$base" || { echo "build_cpu_image: base image $base missing; run scripts/ci/podman_setup.sh first" >&2; exit 1; }

# Only what the Dockerfile copies, so the context stays small and needs no .dockerignore.
inputs=(requirements/lock.txt pyproject.toml containers/cpu/Dockerfile)
[ -f README.md ] && inputs+=(README.md)
mapfile -t src_files < <(find src -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' | LC_ALL=C sort)
inputs_hash=$(sha256sum "${inputs[@]}" "${src_files[@]}" | sha256sum | cut -c1-16)

if podman image exists "$image" \
    && [ "$(podman image inspect --format '{{index .Labels "scclust.inputs"}}' "$image")" = "$inputs_hash" ]; then
    echo "build_cpu_image: $image is up to date (inputs $inputs_hash)"
    exit 0
fi

context=$(mktemp -d /tmp/scclust-context.XXXXXX)
trap 'rm -rf "$context"' EXIT
tar -c --exclude=__pycache__ --exclude='*.egg-info' requirements pyproject.toml src containers | tar -x -C "$context"
if [ -f README.md ]; then
    cp README.md "$context/"
else
    # pyproject.toml names README.md as the package readme, so the build needs the file to exist.
    echo "# scclust" > "$context/README.md"
fi

# pip inside the build needs the network and the host's CA bundle. The bundle is mounted beside, not over, the
# image's own: apt's ca-certificates postinst must be able to replace /etc/ssl/certs/ca-certificates.crt.
podman build --network host \
    --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca-certificates.crt:ro \
    --build-arg PIP_CERT=/run/host-ca-certificates.crt \
    --build-arg "BASE=$base" \
    --label "scclust.inputs=$inputs_hash" \
    -f "$context/containers/cpu/Dockerfile" -t "$image" "$context"
echo "build_cpu_image: built $image (inputs $inputs_hash)"
