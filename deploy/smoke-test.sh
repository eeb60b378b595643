#!/usr/bin/env bash
# Run the built image, wait for /readyz, call both prediction routes, then remove the container.
# Talks to 127.0.0.1 only. Exit status 0 only if every call answered 200 with predictions.
#
# Env: ENGINE (podman), IMAGE_TAG (ceramic-armor:latest), PORT (3300), NAME (armor-smoke),
#      READY_TIMEOUT seconds (120).
set -euo pipefail

ENGINE="${ENGINE:-podman}"
IMAGE_TAG="${IMAGE_TAG:-ceramic-armor:latest}"
PORT="${PORT:-3300}"
NAME="${NAME:-armor-smoke}"
READY_TIMEOUT="${READY_TIMEOUT:-120}"
BASE_URL="http://127.0.0.1:$PORT"
BODY='{"composition": {"SiC": 0.6, "B4C": 0.3, "Al2O3": 0.1}, "processing": {"sintering_temperature": 1800}}'

RUN_FLAGS=()
# Same reason as in container.sh: crun cannot start containers on this host's cgroup layout.
if [[ $ENGINE == podman ]] && command -v runc >/dev/null; then RUN_FLAGS=(--runtime runc); fi

# Turns a prediction response into one line per property (fails loudly if there is none).
SUMMARISE='
import json, sys
doc = json.load(sys.stdin)
for name, p in doc["predictions"].items():
    lo, hi = p["confidence_interval"]
    print("  %-22s %10.3f %-14s 95%% [%.3f, %.3f]" % (name, p["value"], p["unit"], lo, hi))
info = doc["model_info"]
print("  model %s:%s, %s ms server-side" % (info["name"], info["version"], round(doc["processing_time_ms"], 1)))
'

step() { printf '\n==> %s\n' "$*"; }

cleanup() {
    # Only the container this script started, by its name.
    "$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true
}

wait_ready() {
    local started=$SECONDS
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/readyz") == 200 ]]; do
        if ((SECONDS - started > READY_TIMEOUT)); then
            echo "not ready after ${READY_TIMEOUT}s; container log:" >&2
            "$ENGINE" logs "$NAME" 2>&1 | tail -n 40 >&2
            return 1
        fi
        if [[ $("$ENGINE" inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null) != true ]]; then
            echo "container exited; log:" >&2
            "$ENGINE" logs "$NAME" 2>&1 | tail -n 40 >&2
            return 1
        fi
        sleep 1
    done
    echo "ready after $((SECONDS - started)) s"
}

# POST the sample material to one route; print status, latency and the predicted properties.
check_route() {
    local route="$1" out status
    out="$(curl -s -w '\n%{http_code} %{time_total}' -XPOST "$BASE_URL/api/v1/predict/$route" \
        -H 'content-type: application/json' -d "$BODY")"
    status="$(tail -n1 <<<"$out")"
    echo "POST /api/v1/predict/$route -> HTTP ${status% *} in ${status#* }s"
    if [[ ${status% *} != 200 ]]; then
        head -n -1 <<<"$out" | head -c 2000 >&2; echo >&2
        return 1
    fi
    head -n -1 <<<"$out" | python3 -c "$SUMMARISE"
}

main() {
    trap cleanup EXIT
    cleanup
    step "$ENGINE run -d ${RUN_FLAGS[*]} -p 127.0.0.1:$PORT:3000 --name $NAME $IMAGE_TAG"
    "$ENGINE" run -d "${RUN_FLAGS[@]}" -p "127.0.0.1:$PORT:3000" --name "$NAME" "$IMAGE_TAG" >/dev/null
    step "waiting for $BASE_URL/readyz"
    wait_ready
    step "calling the API"
    check_route mechanical
    check_route ballistic
    step "smoke test passed; removing $NAME"
}

main "$@"
