#!/usr/bin/env bash
# A newcomer's first `make test`, on a fresh Debian 12 with only python3 and make.
#
#   1. debootstrap a minbase bookworm with python3, make and ca-certificates (cached as a tarball
#      in $CACHE_DIR; ca-certificates because minbase has none and the index is reached over HTTPS;
#      a Debian installed from its installer has them),
#   2. unpack it into a fresh folder and copy in a clean `git clone` of REF (committed work only),
#   3. give it what an installed Debian has and debootstrap leaves out (/etc/hosts, resolv.conf),
#      and this host's TLS trust only: the CA certificates of /usr/local/share/ca-certificates
#      (a network that intercepts TLS needs them on every machine) and, when the host has one, the
#      `cert =` line of /etc/pip.conf (pip reads its own bundle otherwise); no index, find-links or
#      wheels of the host,
#   4. run `make test` there as an unprivileged user with an empty environment (no ARMOR_*, no CI,
#      no PIP_*), and print its exit status.
#
# Needs root (debootstrap, chroot, mounts) and the Debian mirror and the package index on the
# network. Takes ~15-30 min on two cores, most of it pip downloading and the suite running.
#
# Usage: sudo bash deploy/fresh-machine-test.sh [REF]     (REF default: HEAD)
# Env:   CACHE_DIR      (default /var/tmp/ceramic-armor-fresh)
#        DEBIAN_MIRROR  (default http://deb.debian.org/debian)
#        KEEP=1         keep the root file system afterwards (it is removed otherwise)
set -euo pipefail

REF="${1:-HEAD}"
CACHE_DIR="${CACHE_DIR:-/var/tmp/ceramic-armor-fresh}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TARBALL="$CACHE_DIR/bookworm-python3-make.tar"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$CACHE_DIR/root-$$"
USER_NAME=newcomer

die() { printf 'fresh-machine-test: %s\n' "$*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }

make_tarball() {
    [[ -s "$TARBALL" ]] && return
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
    local rootfs="$CACHE_DIR/rootfs"
    rm -rf "$rootfs" && mkdir -p "$rootfs"
    step "debootstrap --variant=minbase bookworm with python3, make, ca-certificates (a few minutes)"
    debootstrap --variant=minbase --include=python3,make,ca-certificates bookworm "$rootfs" "$DEBIAN_MIRROR"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$rootfs"
}

cleanup() {
    for mount in dev/shm dev/pts dev proc sys; do
        mountpoint -q "$ROOT/$mount" 2>/dev/null && umount -l "$ROOT/$mount"
    done
    [[ "${KEEP:-0}" == 1 ]] || rm -rf "$ROOT"
}

main() {
    [[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot)"
    mkdir -p "$CACHE_DIR"
    make_tarball
    trap cleanup EXIT
    step "unpacking a fresh root file system into $ROOT"
    mkdir -p "$ROOT" && tar -C "$ROOT" -xf "$TARBALL"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # Every installed Debian (and every container runtime) writes /etc/hosts; debootstrap does not,
    # and without it "localhost" does not resolve (bentoml serve binds its ports there).
    [[ -s "$ROOT/etc/hosts" ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
        chroot "$ROOT" update-ca-certificates >/dev/null
    fi
    if grep -qs '^cert *=' /etc/pip.conf; then
        printf '[global]\n%s\n' "$(grep '^cert *=' /etc/pip.conf)" >"$ROOT/etc/pip.conf"
    fi
    mount -t proc proc "$ROOT/proc"
    mount -t sysfs sys "$ROOT/sys"
    mount --bind /dev "$ROOT/dev"
    mount -t devpts devpts "$ROOT/dev/pts" -o newinstance,ptmxmode=0666
    mount -t tmpfs shm "$ROOT/dev/shm"
    chroot "$ROOT" useradd --create-home --shell /bin/bash "$USER_NAME"

    step "cloning $(git -C "$REPO" rev-parse --short "$REF") ($REF) into /home/$USER_NAME/ceramic-armor"
    local home="$ROOT/home/$USER_NAME"
    git clone --quiet --no-hardlinks "$REPO" "$home/ceramic-armor"
    git -C "$home/ceramic-armor" checkout --quiet --detach "$(git -C "$REPO" rev-parse "$REF")"
    chroot "$ROOT" chown -R "$USER_NAME:$USER_NAME" "/home/$USER_NAME"
    chroot "$ROOT" sh -c 'python3 --version; make --version | head -1; python3 -c "import ensurepip" 2>&1 | tail -1 || true'

    step "make test as $USER_NAME, empty environment"
    local status=0
    chroot --userspec="$USER_NAME:$USER_NAME" "$ROOT" /usr/bin/env -i \
        HOME="/home/$USER_NAME" USER="$USER_NAME" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        /bin/bash -c 'cd ~/ceramic-armor && make test' || status=$?
    step "make test exited with $status"
    return "$status"
}

main "$@"
