#!/usr/bin/env bash
# Prepares rootful podman on a Debian CI host and a local base image, localhost/debian:bookworm, because no container
# registry is reachable from CI. Idempotent: reruns only rewrite the podman config. Usage (as root): podman_setup.sh
set -euo pipefail

base_image=${BASE_IMAGE:-localhost/debian:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

[ "$(id -u)" -eq 0 ] || { echo "podman_setup: run as root (it installs packages and writes /etc/containers)" >&2; exit 1; }

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null \
        || { echo "podman_setup: apt-get install podman runc debootstrap failed; check the Debian mirror is reachable" >&2; exit 1; }
fi

# crun and podman's default ulimits both fail on this host's hybrid cgroups; runc with cgroupfs works.
mkdir -p /etc/containers
cat > /etc/containers/containers.conf <<'CONF'
# Written by scclust scripts/ci/podman_setup.sh
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF

if podman image exists "$base_image"; then
    echo "podman_setup: $base_image already present"
    exit 0
fi

rootfs=$(mktemp -d /tmp/scclust-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
# python3 and venv (which brings pip) come in here so the image build needs no apt step; procps gives Nextflow its `ps`.
debootstrap --variant=minbase --include=python3,python3-venv,procps \
    bookworm "$rootfs" "$mirror" >/dev/null \
    || { echo "podman_setup: debootstrap of bookworm from $mirror failed; set DEBIAN_MIRROR to a reachable mirror" >&2; exit 1; }
# Drop the apt lists and package cache from the image; `apt-get update` in a build fetches fresh ones.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
echo "podman_setup: imported $base_image"
