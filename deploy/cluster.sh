#!/usr/bin/env bash
# A real three-instance deployment on this machine: 3 x `bentoml serve`, one redis-server, HAProxy
# in front (deploy/haproxy.cfg). `make cluster-up` / `make cluster-down`; docs/deployment.md.
#
#   deploy/cluster.sh up                 start redis, the instances (waits for /readyz) and haproxy
#   deploy/cluster.sh down               stop all of it (TERM: each instance drains, docs/deployment.md
#                                        "Stopping"; KILL what is left after SHUTDOWN_GRACE_S +
#                                        SHUTDOWN_TIMEOUT_S + 10 s)
#   deploy/cluster.sh status             pids, ports, HAProxy's view of the servers
#   deploy/cluster.sh start-instance N [--no-wait] | stop-instance N | kill-instance N (SIGKILL)
#   deploy/cluster.sh start-redis | stop-redis
#
# `kill-instance` SIGKILLs the serve process and every worker at once (found by parent links,
# since BentoML puts each worker in its own session) -- what a dying container or node looks like. Each has its own BENTOML_HOME whose models/ links to the real
# store (its own BentoML state; the metrics files are private to each serve, serving/control.py).
#
# Env: CLUSTER_DIR (/tmp/armor-cluster: pids, logs, homes, haproxy.sock), CLUSTER_PORT (8080,
# HAProxy), CLUSTER_STATS_PORT (8404), CLUSTER_BASE_PORT (3101: instance N on base+N-1),
# CLUSTER_REDIS_PORT (6390), CLUSTER_REDIS_MAXMEMORY (256mb), CACHE_BACKEND (redis | memory),
# API_WORKERS / PREDICTION_WORKERS (1 / 1: three instances share two cores), BENTOML_HOME (the
# model store to link, ~/bentoml), CLUSTER_SRC (the service's source tree, default this
# repository; e.g. `git archive HEAD | tar -x -C /tmp/armor-src` to serve a fixed commit while the
# working tree changes). DATABASE_URL and the other PREDICTION_LOG_* settings pass through from
# the caller's environment: by default the three instances share the SQLite file
# $CLUSTER_SRC/var/prediction_log.sqlite3; `DATABASE_URL=postgresql://... make cluster-up` puts the
# prediction log on a PostgreSQL server (docs/prediction-log.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export CLUSTER_DIR="${CLUSTER_DIR:-/tmp/armor-cluster}"
export CLUSTER_PORT="${CLUSTER_PORT:-8080}"
export CLUSTER_STATS_PORT="${CLUSTER_STATS_PORT:-8404}"
CLUSTER_BASE_PORT="${CLUSTER_BASE_PORT:-3101}"
CLUSTER_REDIS_PORT="${CLUSTER_REDIS_PORT:-6390}"
CLUSTER_REDIS_MAXMEMORY="${CLUSTER_REDIS_MAXMEMORY:-256mb}"
INSTANCES=3   # deploy/haproxy.cfg lists i1..i3
MODEL_STORE="${BENTOML_HOME:-$HOME/bentoml}/models"
BENTOML="${BENTOML:-$ROOT/.venv/bin/bentoml}"
CLUSTER_SRC="${CLUSTER_SRC:-$ROOT}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-180}"

for n in 1 2 3; do export "INSTANCE${n}_PORT=$((CLUSTER_BASE_PORT + n - 1))"; done

say() { printf '[cluster %3ds] %s\n' "$SECONDS" "$*"; }
port_of() { echo $((CLUSTER_BASE_PORT + $1 - 1)); }
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_env() {
    # What loadtests/cluster.py reads: where everything is.
    cat >"$CLUSTER_DIR/cluster.env" <<EOF
CLUSTER_DIR=$CLUSTER_DIR
CLUSTER_SRC=$CLUSTER_SRC
CLUSTER_PORT=$CLUSTER_PORT
CLUSTER_STATS_PORT=$CLUSTER_STATS_PORT
CLUSTER_REDIS_PORT=$CLUSTER_REDIS_PORT
INSTANCE1_PORT=$INSTANCE1_PORT
INSTANCE2_PORT=$INSTANCE2_PORT
INSTANCE3_PORT=$INSTANCE3_PORT
EOF
}

start_redis() {
    local pidfile="$CLUSTER_DIR/redis.pid"
    if pid_alive "$pidfile"; then say "redis already running (pid $(cat "$pidfile"))"; return; fi
    # A cache, not a store: no persistence, bounded memory, evict least-recently-used keys.
    redis-server --port "$CLUSTER_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --maxmemory "$CLUSTER_REDIS_MAXMEMORY" --maxmemory-policy allkeys-lru \
        --daemonize yes --pidfile "$pidfile" --logfile "$CLUSTER_DIR/redis.log"
    for _ in $(seq 100); do
        redis-cli -p "$CLUSTER_REDIS_PORT" ping >/dev/null 2>&1 && { say "redis up on :$CLUSTER_REDIS_PORT"; return; }
        sleep 0.05
    done
    say "redis did not answer; see $CLUSTER_DIR/redis.log"; return 1
}

stop_redis() {
    local pidfile="$CLUSTER_DIR/redis.pid"
    pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    local pid; pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pidfile"
    say "redis stopped"
}

wait_ready() {
    local n="$1" port; port="$(port_of "$n")"
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    while ((SECONDS < deadline)); do
        pid_alive "$CLUSTER_DIR/instance$n.pid" || { say "instance $n exited; see $CLUSTER_DIR/home$n/serve.log"; return 1; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz") == 200 ]] && { say "instance $n ready on :$port"; return 0; }
        sleep 0.2
    done
    say "instance $n not ready after ${READY_TIMEOUT_S} s; see $CLUSTER_DIR/home$n/serve.log"; return 1
}

start_instance() {
    local n="$1" wait="${2:-}" port home pidfile
    port="$(port_of "$n")"; home="$CLUSTER_DIR/home$n"; pidfile="$CLUSTER_DIR/instance$n.pid"
    if pid_alive "$pidfile"; then say "instance $n already running (pid $(cat "$pidfile"))"; return; fi
    mkdir -p "$home"
    ln -sfn "$MODEL_STORE" "$home/models"
    # setsid: detached from the caller's terminal and process group (Ctrl-C there does not reach it).
    (cd "$CLUSTER_SRC" && exec env BENTOML_HOME="$home" BENTOML_DO_NOT_TRACK=true PYTHONPATH="$CLUSTER_SRC" \
        CACHE_BACKEND="${CACHE_BACKEND:-redis}" REDIS_URL="redis://127.0.0.1:$CLUSTER_REDIS_PORT/0" \
        API_WORKERS="${API_WORKERS:-1}" PREDICTION_WORKERS="${PREDICTION_WORKERS:-1}" \
        TRUSTED_PROXIES="127.0.0.1" \
        setsid "$BENTOML" serve service:ArmorService --host 127.0.0.1 --port "$port" \
        >>"$home/serve.log" 2>&1 </dev/null) &
    echo $! >"$pidfile"
    say "instance $n starting (pid $!, :$port, CACHE_BACKEND=${CACHE_BACKEND:-redis})"
    [[ $wait == --no-wait ]] || wait_ready "$n"
}

descendants() {
    # BentoML starts every worker in its own session (setsid), so neither the process group nor the
    # session of `bentoml serve` reaches them: walk the parent links instead.
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$child"; descendants "$child"; done
}

signal_instance() {
    local n="$1" sig="$2" pidfile="$CLUSTER_DIR/instance$1.pid" pid tree
    pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid="$(cat "$pidfile")"
    tree="$pid $(descendants "$pid" | tr '\n' ' ')"
    if [[ $sig == KILL ]]; then
        # The whole tree at once, as when a container or node dies.
        kill -KILL $tree 2>/dev/null || true
    else
        # HAProxy sends this instance nothing new from now on (its /readyz turns 503 on SIGTERM
        # too, but the health check needs up to 2 s to see it); the instance drains
        # (serving/drain.py): it serves for SHUTDOWN_GRACE_S, then finishes what is in flight
        # within SHUTDOWN_TIMEOUT_S and stops its runner last. What is left after that is killed.
        [[ -S $CLUSTER_DIR/haproxy.sock ]] && haproxy_command "set server armor/i$n state drain" >/dev/null
        kill "-$sig" "$pid" 2>/dev/null || true
        local limit_s=$(( ${SHUTDOWN_GRACE_S:-5} + ${SHUTDOWN_TIMEOUT_S:-30} + 10 ))
        for _ in $(seq $((limit_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL $tree 2>/dev/null || true
        # out of the drain state: the health check decides again (DOWN until /readyz says 200)
        [[ -S $CLUSTER_DIR/haproxy.sock ]] && haproxy_command "set server armor/i$n state ready" >/dev/null
    fi
    for _ in $(seq 50); do
        local alive=0 p
        for p in $tree; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    rm -f "$pidfile"
    say "instance $n stopped ($sig: ${tree// /,})"
}

start_haproxy() {
    local pidfile="$CLUSTER_DIR/haproxy.pid"
    if pid_alive "$pidfile"; then say "haproxy already running"; return; fi
    haproxy -c -q -f "$HERE/haproxy.cfg"
    # Foreground process (not -D) so that its log on stderr lands in haproxy.log.
    setsid haproxy -f "$HERE/haproxy.cfg" >>"$CLUSTER_DIR/haproxy.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 50); do [[ -S $CLUSTER_DIR/haproxy.sock ]] && break; sleep 0.1; done
    say "haproxy on :$CLUSTER_PORT (stats http://127.0.0.1:$CLUSTER_STATS_PORT/, socket $CLUSTER_DIR/haproxy.sock)"
}

stop_haproxy() {
    local pidfile="$CLUSTER_DIR/haproxy.pid"
    pid_alive "$pidfile" && kill -TERM "$(cat "$pidfile")"
    rm -f "$pidfile" "$CLUSTER_DIR/haproxy.sock"
}

up() {
    command -v haproxy >/dev/null || { echo "haproxy not installed (apt-get install haproxy)"; exit 1; }
    command -v redis-server >/dev/null || { echo "redis-server not installed (apt-get install redis-server)"; exit 1; }
    [[ -d $MODEL_STORE ]] || { echo "no model store at $MODEL_STORE (make models)"; exit 1; }
    mkdir -p "$CLUSTER_DIR"
    write_env
    start_redis
    for n in $(seq "$INSTANCES"); do start_instance "$n" --no-wait; done
    for n in $(seq "$INSTANCES"); do wait_ready "$n"; done
    start_haproxy
    say "up: http://127.0.0.1:$CLUSTER_PORT/api/v1/predict/mechanical"
}

down() {
    [[ -d $CLUSTER_DIR ]] || { say "nothing to stop ($CLUSTER_DIR missing)"; return; }
    stop_haproxy
    for n in $(seq "$INSTANCES"); do signal_instance "$n" TERM & done
    wait
    stop_redis
    say "down"
}

status() {
    for f in "$CLUSTER_DIR"/*.pid; do
        [[ -e $f ]] || continue
        printf '%-14s pid %-8s %s\n' "$(basename "$f" .pid)" "$(cat "$f")" "$(pid_alive "$f" && echo running || echo dead)"
    done
    [[ -S $CLUSTER_DIR/haproxy.sock ]] && haproxy_command "show stat" | cut -d, -f1,2,18,37 | grep '^armor,' || true
}

haproxy_command() {
    # HAProxy's runtime API (no socat on this machine): one command, the answer on stdout.
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
print(b"".join(iter(lambda: s.recv(65536), b"")).decode(), end="")' "$CLUSTER_DIR/haproxy.sock" "$1"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    start-instance) mkdir -p "$CLUSTER_DIR"; start_instance "$2" "${3:-}" ;;
    stop-instance) signal_instance "$2" TERM ;;
    kill-instance) signal_instance "$2" KILL ;;
    start-redis) mkdir -p "$CLUSTER_DIR"; start_redis ;;
    stop-redis) stop_redis ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
esac
