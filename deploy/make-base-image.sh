#!/usr/bin/env bash
# Build a local stand-in for `python:3.11-slim` without Docker Hub.
#
# BentoML's generated Dockerfile starts `FROM python:3.11-slim`. Docker Hub is not reachable
# from this machine, but the Debian mirror is, and Debian bookworm's python3 *is* 3.11. So:
#   1. debootstrap a minbase bookworm root file system (cached as a tarball in $CACHE_DIR),
#   2. import it as localhost/debian:bookworm-minbase,
#   3. podman-build deploy/base.Containerfile on top (python3, pip, venv, CA certs),
#   4. tag the result with the exact reference the Bento's Dockerfile asks for.
# Every step is skipped when its output already exists, so a second run takes about a second.
#
# Usage: bash deploy/make-base-image.sh [ENGINE]   (ENGINE: podman (default) or docker)
# Env:   BASE_IMAGE  reference to tag        (default docker.io/library/python:3.11-slim)
#        CACHE_DIR   where the rootfs lives  (default /var/tmp/ceramic-armor-base)
#        DEBIAN_MIRROR                       (default http://deb.debian.org/debian)
#        REBUILD=1   ignore every cache and start from debootstrap again
set -euo pipefail

ENGINE="${1:-podman}"
BASE_IMAGE="${BASE_IMAGE:-docker.io/library/python:3.11-slim}"
CACHE_DIR="${CACHE_DIR:-/var/tmp/ceramic-armor-base}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
MINBASE_IMAGE="localhost/debian:${SUITE}-minbase"
PYTHON_IMAGE="localhost/debian-python:3.11-${SUITE}"
# Debian 12's crun refuses this host's hybrid cgroup v1/v2 layout ("cgroups in hybrid mode not
# supported"); runc copes, for RUN steps as well as for `podman run`.
BUILD_FLAGS=()
if [[ "$ENGINE" == podman ]] && command -v runc >/dev/null; then BUILD_FLAGS=(--runtime runc); fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'make-base-image: %s\n' "$*" >&2; exit 1; }

image_exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

# debootstrap needs root (chroot, mknod, file ownership); it is the only step that does.
make_rootfs_tarball() {
    local tarball="$CACHE_DIR/${SUITE}-minbase.tar"
    if [[ -s "$tarball" && "${REBUILD:-0}" != 1 ]]; then
        echo "cached root file system: $tarball" >&2
        printf '%s\n' "$tarball"
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "debootstrap needs root; run as root or provide $tarball"
    if ! command -v debootstrap >/dev/null; then
        step "installing debootstrap" >&2
        apt-get install -y -q debootstrap >&2
    fi
    local rootfs="$CACHE_DIR/rootfs"
    rm -rf "$rootfs" && mkdir -p "$rootfs"
    step "debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR (a few minutes)" >&2
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >&2
    # Same sources as the official debian:bookworm image, so security fixes reach the image.
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
    # Keep the tarball small: package lists and .deb files are re-fetched by later layers anyway.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    printf '%s\n' "$tarball"
}

import_minbase() {
    if image_exists "$MINBASE_IMAGE" && [[ "${REBUILD:-0}" != 1 ]]; then
        echo "image present: $MINBASE_IMAGE"
        return
    fi
    local tarball
    tarball="$(make_rootfs_tarball)"
    step "importing $tarball as $MINBASE_IMAGE"
    "$ENGINE" import --change 'CMD ["bash"]' "$tarball" "$MINBASE_IMAGE"
}

build_python_layer() {
    if image_exists "$PYTHON_IMAGE" && [[ "${REBUILD:-0}" != 1 ]]; then
        echo "image present: $PYTHON_IMAGE"
        return
    fi
    step "building $PYTHON_IMAGE from deploy/base.Containerfile"
    # Never pull: the FROM image is the local import above; there is no registry to ask.
    # (podman spells it --pull=never; docker's --pull is a boolean whose false means "use local".)
    local no_pull=--pull=never
    [[ "$ENGINE" == docker ]] && no_pull=--pull=false
    "$ENGINE" build "${BUILD_FLAGS[@]}" "$no_pull" --build-arg "FROM_IMAGE=$MINBASE_IMAGE" \
        -f "$HERE/base.Containerfile" -t "$PYTHON_IMAGE" "$HERE"
}

main() {
    command -v "$ENGINE" >/dev/null || die "$ENGINE not found"
    mkdir -p "$CACHE_DIR"
    step "base image $BASE_IMAGE (engine: $ENGINE, cache: $CACHE_DIR)"
    if image_exists "$BASE_IMAGE" && [[ "${REBUILD:-0}" != 1 ]]; then
        echo "image present: $BASE_IMAGE -> nothing to do"
        return
    fi
    import_minbase
    build_python_layer
    step "tagging $PYTHON_IMAGE as $BASE_IMAGE"
    "$ENGINE" tag "$PYTHON_IMAGE" "$BASE_IMAGE"
    "$ENGINE" run --rm "${BUILD_FLAGS[@]}" "$BASE_IMAGE" python --version
}

main "$@"
