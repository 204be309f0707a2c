#!/usr/bin/env bash
# Builds scclust's container image with podman. The image carries a label with a hash of its inputs, so reruns with
# unchanged inputs skip the build (minutes) and take well under a second.
# Usage: build_cpu_image.sh [cpu|cuda|scvi]
#   cpu (default): IMAGE=localhost/scclust-cpu:0.1.0 on BASE=localhost/debian:bookworm (made by podman_setup.sh), for CI.
#   cuda: IMAGE=localhost/scclust-cuda:0.1.0 on the Dockerfile's public nvidia/cuda base unless BASE is set; needs a
#         registry and several GB of downloads, so it is for a GPU host, not this project's CI (see containers/README.md).
#   scvi: IMAGE=localhost/scclust-scvi:0.1.0 on the cpu image (build that first); torch's wheels are ~3 GB.
set -euo pipefail

flavour=${1:-cpu}
case "$flavour" in
    cpu) image=${IMAGE:-localhost/scclust-cpu:0.1.0} base=${BASE:-localhost/debian:bookworm} ;;
    cuda) image=${IMAGE:-localhost/scclust-cuda:0.1.0} base=${BASE:-} ;;
    scvi) image=${IMAGE:-localhost/scclust-scvi:0.1.0} base=${BASE:-localhost/scclust-cpu:0.1.0} ;;
    *) echo "build_cpu_image: unknown flavour '$flavour'; use cpu, cuda or scvi" >&2; exit 1 ;;
esac
dockerfile=containers/$flavour/Dockerfile
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

command -v podman >/dev/null || { echo "build_cpu_image: podman not found; run scripts/ci/podman_setup.sh first" >&2; exit 1; }
build_args=()
base_id=
if [ -n "$base" ]; then
    podman image exists "$base" || { echo "build_cpu_image: base image $base missing; run scripts/ci/podman_setup.sh first" >&2; exit 1; }
    build_args+=(--build-arg "BASE=$base")
    base_id=$(podman image inspect --format '{{.Id}}' "$base")
fi

# Only what the Dockerfile copies, so the context stays small and needs no .dockerignore.
inputs=(requirements/lock.txt pyproject.toml "$dockerfile")
[ "$flavour" = scvi ] && inputs+=(requirements/scvi.txt)
[ -f README.md ] && inputs+=(README.md)
mapfile -t src_files < <(find src -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' | LC_ALL=C sort)
inputs_hash=$({ echo "base $base_id"; sha256sum "${inputs[@]}" "${src_files[@]}"; } | sha256sum | cut -c1-16)

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

# pip inside the build needs the network and the host's CA bundle (CI reaches PyPI through a TLS-inspecting proxy).
# The bundle is mounted beside, not over, the image's own: apt's ca-certificates postinst must be able to replace
# /etc/ssl/certs/ca-certificates.crt.
host_ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$host_ca" ]; then
    build_args+=(--volume "$host_ca:/run/host-ca-certificates.crt:ro" --build-arg PIP_CERT=/run/host-ca-certificates.crt)
fi
podman build --network host \
    "${build_args[@]}" \
    --label "scclust.inputs=$inputs_hash" \
    -f "$context/$dockerfile" -t "$image" "$context"
echo "build_cpu_image: built $image (inputs $inputs_hash)"
