#!/usr/bin/env bash
# `make container`: build an OCI image of the Bento and print how to run it.
#
# Steps (each is echoed as it starts; every one is safe to re-run):
#   1. pick an engine: podman if it runs here (installing it when root and absent), else docker,
#      else say why not and exit 0 -- a machine without an engine is not a build failure;
#   2. make sure the base image of BentoML's Dockerfile exists locally (deploy/make-base-image.sh),
#      because Docker Hub is not reachable from where this was written;
#   3. `bentoml build` the Bento from bentofile.yaml;
#   4. `bentoml containerize` that exact Bento tag into $IMAGE_TAG;
#   5. optionally (SMOKE_TEST=1) run it and call the API (deploy/smoke-test.sh).
#
# Env: IMAGE_TAG (ceramic-armor:latest), ENGINE (podman|docker, skip detection),
#      LOCAL_BASE=0 (let the engine pull the base image instead of building it locally),
#      SMOKE_TEST=1 (run deploy/smoke-test.sh after the build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
IMAGE_TAG="${IMAGE_TAG:-ceramic-armor:latest}"
BENTOML="${BENTOML:-$ROOT/.venv/bin/bentoml}"
CONTAINERS_CONF=/etc/containers/containers.conf
# The Bento's Dockerfile starts FROM python:3.11-slim; podman/docker resolve that to this name.
BASE_IMAGE="${BASE_IMAGE:-docker.io/library/python:3.11-slim}"
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

ENGINE="${ENGINE:-}"
RUNTIME_FLAGS=()   # extra `podman run/build` flags, filled in by detect_engine

step() { printf '\n==> [%3ds] %s\n' "$SECONDS" "$*"; }
is_root() { [[ $(id -u) -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }

# podman on this kind of host needs two settings (see deploy/README.md):
#   default_ulimits = []  -- the default nofile/nproc ulimits cannot be applied in this sandbox;
#   runc, not crun        -- Debian 12's crun rejects the hybrid cgroup layout.
# We only create the config when there is none, never overwrite somebody else's.
ensure_podman_setup() {
    if ! have podman && is_root && have apt-get; then
        step "installing podman + runc with apt-get"
        apt-get update -q && apt-get install -y -q podman runc
    fi
    have podman || return 1
    if [[ ! -e $CONTAINERS_CONF ]] && is_root; then
        step "writing $CONTAINERS_CONF (default_ulimits = [])"
        mkdir -p "$(dirname "$CONTAINERS_CONF")"
        printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
    elif [[ -e $CONTAINERS_CONF ]] && ! grep -q '^ *default_ulimits *= *\[ *\]' "$CONTAINERS_CONF"; then
        echo "note: $CONTAINERS_CONF has no 'default_ulimits = []'; containers may fail to start"
    fi
    if ! have runc && is_root && have apt-get; then
        step "installing runc with apt-get"
        apt-get install -y -q runc
    fi
    have runc && RUNTIME_FLAGS=(--runtime runc)
    return 0
}

detect_engine() {
    step "detecting a container engine"
    local wanted="$ENGINE" reasons=() err
    ENGINE=""
    if [[ -z $wanted || $wanted == podman ]]; then
        if ensure_podman_setup; then
            if err="$(podman info 2>&1 >/dev/null)"; then
                ENGINE=podman
            else
                reasons+=("podman info: $(tail -n1 <<<"$err")")
            fi
        else
            reasons+=("podman: not installed$(is_root || echo ' (not root, so not installing it)')")
        fi
    fi
    if [[ -z $ENGINE && ( -z $wanted || $wanted == docker ) ]]; then
        if ! have docker; then
            reasons+=("docker: not installed")
        elif err="$(docker info 2>&1 >/dev/null)"; then
            ENGINE=docker
        else
            reasons+=("docker info: $(tail -n1 <<<"$err")")
        fi
    fi
    if [[ -z $ENGINE ]]; then
        local IFS=';'
        echo "no container engine can run here: ${reasons[*]:-ENGINE=$wanted is not podman or docker}"
        exit 0
    fi
    echo "engine: $("$ENGINE" --version | head -n1)${RUNTIME_FLAGS[*]:+ (OCI runtime: ${RUNTIME_FLAGS[1]})}"
}

ensure_base_image() {
    if [[ ${LOCAL_BASE:-1} == 0 ]]; then
        step "LOCAL_BASE=0: $ENGINE will pull $BASE_IMAGE itself"
        return
    fi
    step "ensuring base image $BASE_IMAGE (local, built from Debian bookworm)"
    BASE_IMAGE="$BASE_IMAGE" bash "$HERE/make-base-image.sh" "$ENGINE"
}

# Prints the tag of the Bento it built (e.g. ceramic_armor:uowkrnhj4on6qax4) on stdout.
build_bento() {
    step "bentoml build (bentofile.yaml)" >&2
    [[ -f $ROOT/bentofile.yaml ]] || { echo "missing $ROOT/bentofile.yaml" >&2; exit 1; }
    local out
    out="$(cd "$ROOT" && "$BENTOML" build -o tag)"
    # `-o tag` prints `__tag__:<name>:<version>`; containerize exactly this build, not :latest,
    # so a concurrent `bentoml build` elsewhere cannot change what ends up in the image.
    out="$(grep -o '__tag__:.*' <<<"$out" | tail -n1)"
    [[ -n $out ]] || { echo "bentoml build printed no tag" >&2; exit 1; }
    echo "bento: ${out#__tag__:}" >&2
    printf '%s\n' "${out#__tag__:}"
}

containerize() {
    local bento_tag="$1" opts=()
    if [[ $ENGINE == podman ]]; then
        [[ ${#RUNTIME_FLAGS[@]} -gt 0 ]] && opts+=(--opt "runtime=${RUNTIME_FLAGS[1]}")
        # Build-time only: lend RUN steps the host's CA bundle so pip/uv can reach PyPI through a
        # TLS-inspecting egress proxy; it is a bind mount, so it is not baked into the image.
        [[ -r $HOST_CA_BUNDLE ]] && opts+=(--opt "volume=$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
    fi
    step "bentoml containerize $bento_tag --backend $ENGINE -t $IMAGE_TAG"
    local started=$SECONDS previous new
    previous="$("$ENGINE" image inspect "$IMAGE_TAG" --format '{{.Id}}' 2>/dev/null || true)"
    # PYTHONWARNINGS: silence click's harmless "--quiet is used more than once" noise.
    (cd "$ROOT" && PYTHONWARNINGS=ignore::UserWarning:click.core \
        "$BENTOML" containerize "$bento_tag" --backend "$ENGINE" -t "$IMAGE_TAG" "${opts[@]}")
    # containerize has been known to log a failed build and still exit 0; trust the image store.
    "$ENGINE" image inspect "$IMAGE_TAG" >/dev/null ||
        { echo "containerize finished but $IMAGE_TAG is not in the $ENGINE image store" >&2; exit 1; }
    # The image this build replaced keeps its layers alive untagged; drop it (only it, by id,
    # and only if nothing else tags or runs it -- rmi refuses then, which is fine).
    new="$("$ENGINE" image inspect "$IMAGE_TAG" --format '{{.Id}}')"
    if [[ -n $previous && $previous != "$new" ]]; then
        "$ENGINE" rmi "$previous" >/dev/null 2>&1 && echo "removed the previous $IMAGE_TAG (${previous:0:12})" || true
    fi
    echo "built $IMAGE_TAG in $((SECONDS - started)) s," \
        "size $("$ENGINE" image inspect "$IMAGE_TAG" --format '{{.Size}}' | numfmt --to=si)B"
}

print_usage() {
    local run="$ENGINE run${RUNTIME_FLAGS[*]:+ ${RUNTIME_FLAGS[*]}}"
    step "done; run it with"
    cat <<EOF
  $run --rm -p 3000:3000 $IMAGE_TAG            # entrypoint runs: bentoml serve \$BENTO_PATH
  $run --rm -p 3000:3000 $IMAGE_TAG serve      # same, spelled out
  curl -s localhost:3000/readyz
  curl -s -XPOST localhost:3000/api/v1/predict/mechanical -H 'content-type: application/json' \\
       -d '{"composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1}, "processing": {"sintering_temperature": 1800}}'
Settings are environment variables (settings.py), e.g. -e API_WORKERS=2 -e PREDICTION_WORKERS=1.
Smoke test: ENGINE=$ENGINE bash deploy/smoke-test.sh
EOF
}

main() {
    local started=$SECONDS bento_tag
    detect_engine
    ensure_base_image
    bento_tag="$(build_bento)"
    containerize "$bento_tag"
    if [[ ${SMOKE_TEST:-0} == 1 ]]; then
        step "smoke test"
        ENGINE="$ENGINE" IMAGE_TAG="$IMAGE_TAG" bash "$HERE/smoke-test.sh"
    fi
    print_usage
    echo "total: $((SECONDS - started)) s"
}

main "$@"
