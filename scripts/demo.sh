#!/usr/bin/env bash
# demo.sh — the README's demo: hookline end to end on this machine, no docker.
#
# Owns: .demo/ (server data, logs, the env file of a --keep run). Steps:
#   1. scripts/ensure-deps.sh (pinned nats-server binaries, redis-server);
#   2. a NATS server >= 2.12 with JetStream: $HOOKLINE_NATS__URL (default 127.0.0.1:4222) when it
#      is one, else the pinned nats-server started on a free port; Redis likewise
#      ($HOOKLINE_REDIS__URL, default 127.0.0.1:6379, else a throw-away redis-server);
#   3. builds hookline (release profile; --debug for the dev profile) and starts `hookline serve`
#      with a short retry schedule (0s, 2s, 4s), logging to .demo/hookline.log;
#   4. creates three subscriptions on `hookline receive`: /ok (always 200), /flaky (500 on the first
#      attempt, then 200: a retry), /fail (always 500: dead-lettered once the schedule runs out);
#   5. publishes sample events and waits (at most 60 s) for the deliveries and the DLQ entry;
#   6. prints the DLQ and the subscriptions, a summary, and stops everything it started.
# Servers that were already running are used, never stopped. Every run has its own prefix
# (streams, subjects and Redis keys), so runs never collide.
#
# Usage: bash scripts/demo.sh [--keep] [--debug]
#   --keep   leave hookline, the receiver and any server the demo started running, to explore
#            (the env to use is written to .demo/env; stop them with the printed command)
#   --debug  build and run the dev profile instead of release (faster when already built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO="$ROOT/.demo"
NATS_VERSION=2.15.1                 # the pinned server the demo starts when it needs one
NATS_BIN="$ROOT/.deps/nats-server-$NATS_VERSION/bin/nats-server"
MIN_NATS=2.12                       # hookline needs message schedules (nats-server >= 2.12)
DEADLINE_SECS=60                    # how long deliveries and the DLQ entry may take to show up
RETRY_SCHEDULE='["0s","2s","4s"]'   # three attempts: /fail is dead-lettered after about 6 s

KEEP=0
PROFILE=release
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        --debug) PROFILE=debug ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

# Processes this run started, in start order: "pid name" entries. Only these are ever stopped.
STARTED=()
# Subscription ids created by this run (removed again from a pre-existing Redis).
SUB_IDS=()
OWN_REDIS=0

# Bold headings and a coloured receiver prefix on a terminal; plain text when piped.
if [ -t 1 ]; then BOLD=$'\033[1m' CYAN=$'\033[36m' RESET=$'\033[0m'; else BOLD='' CYAN='' RESET=''; fi
say() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$RESET"; }
note() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Small helpers

# Prints a free TCP port on 127.0.0.1: $1 if it is free, otherwise one the kernel picks.
free_port() {
    python3 - "$1" <<'EOF'
import socket, sys
def bind(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
print(bind(int(sys.argv[1])) or bind(0))
EOF
}

# Prints "host port" of the first server of a URL list such as nats://u:p@host:4222,nats://...
host_port() {
    python3 - "$1" "$2" <<'EOF'
import sys, urllib.parse
url = sys.argv[1].split(",")[0].strip()
if "://" not in url:
    url = "x://" + url
u = urllib.parse.urlsplit(url)
print(u.hostname or "127.0.0.1", u.port or int(sys.argv[2]))
EOF
}

# Prints "<version> <jetstream yes|no>" of the NATS server at host $1 port $2, from the INFO line
# it sends on connect; fails when nothing answers like a NATS server.
nats_probe() {
    local line
    # shellcheck disable=SC2016 # $0 and $1 expand in the inner shell
    line="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r line <&3 && printf "%s\n" "$line"' "$1" "$2" 2>/dev/null)" || return 1
    python3 -c '
import json, sys
line = sys.argv[1].strip()
if not line.startswith("INFO "):
    sys.exit(1)
info = json.loads(line[5:])
print(info.get("version", "0"), "yes" if info.get("jetstream") else "no")
' "$line"
}

# Succeeds when version $1 >= version $2 (numeric, dot-separated; suffixes like -beta ignored).
version_at_least() {
    python3 -c '
import re, sys
v = lambda s: tuple(int(x) for x in re.findall(r"\d+", s.split("-")[0])[:3])
sys.exit(0 if v(sys.argv[1]) >= v(sys.argv[2]) else 1)
' "$1" "$2"
}

# Succeeds when the Redis server at URL $1 answers PING.
redis_ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        timeout 3 redis-cli -u "$1" ping 2>/dev/null | grep -q PONG
    else
        local host port
        read -r host port <<<"$(host_port "$1" 6379)"
        # shellcheck disable=SC2016 # $0 and $1 expand in the inner shell
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "PING\r\n" >&3 && IFS= read -r l <&3 && [[ $l == +PONG* ]]' \
            "$host" "$port" 2>/dev/null
    fi
}

# Polls command "$@" every 0.2 s until it succeeds or $1 seconds pass.
wait_until() {
    local secs="$1"; shift
    local end=$((SECONDS + secs))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# Starts "$@" in the background with output to log file $2, remembering it under name $1.
start_bg() {
    local name="$1" log="$2"; shift 2
    : >"$log"   # exists before anyone greps it
    "$@" >>"$log" 2>&1 &
    STARTED+=("$! $name")
    LAST_PID=$!
}

alive() { kill -0 "$1" 2>/dev/null; }

# Runs a one-shot hookline command with the demo's environment (exported below); its log lines
# ("connected to NATS", ...) are kept off the terminal unless they are warnings.
hookline() { RUST_LOG="${RUST_LOG:-warn}" "$HOOKLINE_BIN" "$@"; }

# ---------------------------------------------------------------------------------------------
# Clean-up: stop what this run started (newest first), leave everything else alone.

# Removes this run's keys from a pre-existing Redis: every key under the run's unique prefix
# (subscriptions, indexes, dedupe and attempt records); without redis-cli, the subscriptions.
forget_redis_keys() {
    if command -v redis-cli >/dev/null 2>&1; then
        redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX:*" 2>/dev/null \
            | xargs -r -d '\n' redis-cli -u "$REDIS_URL" del >/dev/null 2>&1
    elif [ -n "${HOOKLINE_BIN:-}" ]; then
        local id
        for id in "${SUB_IDS[@]}"; do hookline subscriptions delete "$id" >/dev/null 2>&1; done
    fi
}

cleanup() {
    local rc=$?
    set +e
    if [ "$KEEP" = 1 ] && [ "$rc" = 0 ]; then
        printf '%s\n' "${STARTED[@]%% *}" >"$DEMO/pids"
        say "Left running (--keep)"
        for entry in "${STARTED[@]}"; do echo "  pid ${entry%% *}: ${entry#* }"; done
        echo "  use them:  source .demo/env && hookline subscriptions list"
        echo "  stop them: kill \$(cat .demo/pids)"
        if [ "$OWN_REDIS" = 0 ]; then
            echo "  (its keys stay in $REDIS_URL under $PREFIX:*; remove them with"
            printf "   redis-cli -u %s --scan --pattern '%s:*' | xargs -r -d '\\\\n' redis-cli -u %s del)\\n" \
                "$REDIS_URL" "$PREFIX" "$REDIS_URL"
        fi
        return
    fi
    if [ "$OWN_REDIS" = 0 ] && [ -n "${PREFIX:-}" ]; then
        forget_redis_keys
    fi
    local i pid
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        pid="${STARTED[i]%% *}"
        alive "$pid" || continue
        kill -TERM "$pid" 2>/dev/null
        # hookline finishes in-flight deliveries first (grace period 5 s below); allow a bit more.
        wait_until 10 eval "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "${#STARTED[@]}" -gt 0 ]; then
        note "stopped what the demo started (${#STARTED[@]} processes); logs are in .demo/"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Steps

prepare_dir() {
    if [ -f "$DEMO/pids" ]; then
        local pid
        while read -r pid; do
            if alive "$pid"; then
                die "a demo started with --keep is still running (pids in .demo/pids): stop it with: kill \$(cat .demo/pids)"
            fi
        done <"$DEMO/pids"
    fi
    rm -rf "$DEMO"
    mkdir -p "$DEMO"
}

ensure_deps() {
    say "Dependencies (scripts/ensure-deps.sh)"
    bash "$ROOT/scripts/ensure-deps.sh"
}

# Sets NATS_URL to a NATS server >= 2.12 with JetStream: the configured one if it qualifies,
# otherwise the pinned server started on a free port.
ensure_nats() {
    say "NATS"
    local url="${HOOKLINE_NATS__URL:-nats://127.0.0.1:4222}" host port probe version js
    read -r host port <<<"$(host_port "$url" 4222)"
    if probe="$(nats_probe "$host" "$port")"; then
        read -r version js <<<"$probe"
        if version_at_least "$version" "$MIN_NATS" && [ "$js" = yes ]; then
            note "using nats-server $version at $url"
            NATS_URL="$url"
            return
        elif [ "$js" != yes ]; then
            note "nats-server $version at $url has JetStream disabled; starting our own $NATS_VERSION"
        else
            note "nats-server $version at $url is too old (hookline needs >= $MIN_NATS); starting our own $NATS_VERSION"
        fi
    else
        note "no NATS server answers at $url; starting our own $NATS_VERSION"
    fi
    port="$(free_port 4333)"
    mkdir -p "$DEMO/nats"
    start_bg nats-server "$DEMO/nats.log" "$NATS_BIN" -a 127.0.0.1 -p "$port" -js -sd "$DEMO/nats" -n hookline-demo
    wait_until 15 nats_probe 127.0.0.1 "$port" >/dev/null \
        || die "nats-server did not come up on port $port; see .demo/nats.log"
    NATS_URL="nats://127.0.0.1:$port"
    note "started nats-server $NATS_VERSION (JetStream) at $NATS_URL, data in .demo/nats (pid $LAST_PID)"
}

# Sets REDIS_URL to a Redis that answers PING: the configured one, or a throw-away redis-server.
ensure_redis() {
    say "Redis"
    local url="${HOOKLINE_REDIS__URL:-redis://127.0.0.1:6379/}"
    if redis_ping "$url"; then
        note "using the Redis at $url"
        REDIS_URL="$url"
        return
    fi
    note "no Redis answers at $url; starting our own"
    local port
    port="$(free_port 6380)"
    mkdir -p "$DEMO/redis"
    start_bg redis-server "$DEMO/redis.log" \
        redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no --dir "$DEMO/redis"
    REDIS_URL="redis://127.0.0.1:$port/"
    wait_until 15 redis_ping "$REDIS_URL" || die "redis-server did not come up on port $port; see .demo/redis.log"
    OWN_REDIS=1
    note "started redis-server at $REDIS_URL (pid $LAST_PID)"
}

build() {
    say "Building hookline ($PROFILE profile)"
    local args=(--bin hookline)
    if [ "$PROFILE" = release ]; then args+=(--release); fi
    cargo build "${args[@]}" || die "cargo build ${args[*]} failed (output above)"
    HOOKLINE_BIN="$ROOT/target/$PROFILE/hookline"
}

# Every hookline command below (serve, subscriptions, publish, dlq) reads these.
export_config() {
    PREFIX="demo$(date +%s)"
    export HOOKLINE_NATS__URL="$NATS_URL"
    export HOOKLINE_REDIS__URL="$REDIS_URL"
    export HOOKLINE_STREAMS__PREFIX="$PREFIX"
    export HOOKLINE_RETRY__SCHEDULE="$RETRY_SCHEDULE"
    export HOOKLINE_RETRY__JITTER=0                 # exact delays, so the demo's timing is predictable
    export HOOKLINE_SHUTDOWN__GRACE_PERIOD=5s
    export HOOKLINE_DELIVERY__DEDUPE_TTL=1h         # the demo leaves few keys behind in a shared Redis
    export HOOKLINE_EGRESS__ALLOW_CIDRS='["127.0.0.0/8"]'  # the receiver is on loopback, which SSRF protection refuses otherwise
    export NO_COLOR=1                               # plain text in .demo/hookline.log
    cat >"$DEMO/env" <<EOF
export HOOKLINE_NATS__URL='$NATS_URL'
export HOOKLINE_REDIS__URL='$REDIS_URL'
export HOOKLINE_STREAMS__PREFIX='$PREFIX'
export HOOKLINE_RETRY__SCHEDULE='$RETRY_SCHEDULE'
export HOOKLINE_RETRY__JITTER=0
export HOOKLINE_EGRESS__ALLOW_CIDRS='["127.0.0.0/8"]'
alias hookline='$HOOKLINE_BIN'
EOF
}

start_hookline() {
    say "Starting hookline serve (prefix $PREFIX, retry schedule $RETRY_SCHEDULE)"
    # The pipeline roles only: the admin API (role api) is not part of the demo, and its default
    # port may be taken on a developer machine.
    start_bg "hookline serve" "$DEMO/hookline.log" "$HOOKLINE_BIN" serve --role fanout --role deliver
    SERVE_PID=$LAST_PID
    local end=$((SECONDS + 30))
    until grep -q "hookline running" "$DEMO/hookline.log"; do
        alive "$SERVE_PID" || { tail -n 20 "$DEMO/hookline.log" >&2; die "hookline serve exited; log above (.demo/hookline.log)"; }
        [ "$SECONDS" -lt "$end" ] || die "hookline serve did not report 'hookline running' within 30 s; see .demo/hookline.log"
        sleep 0.2
    done
    note "hookline serve is running (pid $SERVE_PID), log in .demo/hookline.log"
}

# Creates a subscription and prints "<id> <secret>".
create_subscription() {
    local path="$1" types="$2" description="$3"
    hookline subscriptions create --url "http://127.0.0.1:$RECEIVER_PORT$path" \
        --event-type "$types" --description "$description" --output json \
        | python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["id"], s["secret"])'
}

create_subscriptions() {
    say "Creating subscriptions"
    RECEIVER_PORT="$(free_port 9000)"
    local ok flaky fail
    ok="$(create_subscription /ok 'order.*' "demo: always answers 200")" || die "could not create the /ok subscription"
    flaky="$(create_subscription /flaky 'order.created' "demo: 500 on the first attempt, then 200")" || die "could not create the /flaky subscription"
    fail="$(create_subscription /fail 'payment.>' "demo: always answers 500")" || die "could not create the /fail subscription"
    read -r OK_ID OK_SECRET <<<"$ok"
    read -r FLAKY_ID FLAKY_SECRET <<<"$flaky"
    read -r FAIL_ID FAIL_SECRET <<<"$fail"
    SUB_IDS=("$OK_ID" "$FLAKY_ID" "$FAIL_ID")
    note "$OK_ID  /ok     order.*        (always 200)"
    note "$FLAKY_ID  /flaky  order.created  (500 on the first attempt, then 200)"
    note "$FAIL_ID  /fail   payment.>      (always 500)"
}

# Copies the receiver's lines to .demo/receiver.log and to the terminal, prefixed.
show_receiver() {
    local line
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$DEMO/receiver.log"
        printf '%sreceiver |%s %s\n' "$CYAN" "$RESET" "$line"
    done
}

start_receiver() {
    say "Starting the receiver on 127.0.0.1:$RECEIVER_PORT (verifies every signature)"
    : >"$DEMO/receiver.log"
    "$HOOKLINE_BIN" receive --listen "127.0.0.1:$RECEIVER_PORT" \
        --secret "$OK_SECRET" --secret "$FLAKY_SECRET" --secret "$FAIL_SECRET" \
        > >(show_receiver) 2>&1 &
    RECEIVER_PID=$!
    STARTED+=("$RECEIVER_PID hookline receive")
    wait_until 15 grep -q "receiver listening" "$DEMO/receiver.log" \
        || die "the receiver did not start; see .demo/receiver.log"
}

publish_events() {
    say "Publishing events"
    hookline publish order.created '{"order_id":42,"customer":"ada@example.com","total":"19.99","currency":"EUR"}' --source demo
    hookline publish order.shipped '{"order_id":42,"carrier":"DHL","tracking":"JD014600003SE"}' --source demo
    hookline publish payment.captured '{"order_id":42,"amount":"19.99","currency":"EUR"}' --source demo
    note "expect: /ok gets order.created and order.shipped; /flaky gets order.created twice (500, then 200);"
    note "        /fail gets payment.captured 3 times (500 each) and it lands in the DLQ"
}

count_lines() { grep -c -- "$1" "$DEMO/receiver.log" || true; }

dlq_has_fail_entry() {
    hookline dlq list --subscription "$FAIL_ID" --output json 2>/dev/null \
        | python3 -c 'import json, sys; sys.exit(0 if len(json.load(sys.stdin)) >= 1 else 1)'
}

# Waits until /ok has 2 deliveries, /flaky its successful retry and /fail its DLQ entry.
wait_for_outcomes() {
    local end=$((SECONDS + DEADLINE_SECS)) ok flaky dlq
    while :; do
        ok="$(count_lines '^\[/ok\] signature verified: .* answering 200')"
        flaky="$(count_lines '^\[/flaky\] signature verified: .* answering 200')"
        dlq=no
        if dlq_has_fail_entry; then dlq=yes; fi
        if [ "$ok" -ge 2 ] && [ "$flaky" -ge 1 ] && [ "$dlq" = yes ]; then
            break
        fi
        alive "$SERVE_PID" || { tail -n 20 "$DEMO/hookline.log" >&2; die "hookline serve exited; log above"; }
        alive "$RECEIVER_PID" || die "the receiver exited; see .demo/receiver.log"
        if [ "$SECONDS" -ge "$end" ]; then
            echo "demo: error: not everything showed up within ${DEADLINE_SECS}s:" >&2
            echo "  /ok deliveries answered 200: $ok of 2" >&2
            echo "  /flaky deliveries answered 200 (after a retry): $flaky of 1" >&2
            echo "  DLQ entry of /fail: $dlq" >&2
            echo "  last lines of .demo/hookline.log:" >&2
            tail -n 15 "$DEMO/hookline.log" | sed 's/^/    /' >&2
            exit 1
        fi
        sleep 1
    done
    if grep -q REJECTED "$DEMO/receiver.log"; then
        die "the receiver rejected a signature; see .demo/receiver.log"
    fi
}

show_state() {
    say "hookline dlq list"
    hookline dlq list
    say "hookline subscriptions list"
    hookline subscriptions list
}

summary() {
    local stream
    stream="$(printf '%s' "$PREFIX" | tr '[:lower:]-' '[:upper:]_')"
    say "What you just saw"
    cat <<EOF
  * 3 events went into JetStream ($PREFIX.events.<type>); hookline fanned each one out to the
    subscriptions whose filter matches (order.*, order.created, payment.>) and POSTed it, signed
    per Standard Webhooks; the receiver verified every webhook-signature with the endpoint's secret.
  * /flaky answered 500 to the first attempt: hookline scheduled the retry as a JetStream message
    schedule (due 2 s later), and the second attempt got 200. Nothing waited in process memory.
  * /fail answered 500 to all 3 attempts of the schedule $RETRY_SCHEDULE, so the delivery was
    dead-lettered into $PREFIX.dlq.<subscription> with its last status and error.
EOF
    echo
    if [ "$KEEP" = 1 ]; then
        echo "Explore further: everything is still running (--keep); .demo/env holds this run's settings."
    else
        echo "Explore further: run 'bash scripts/demo.sh --keep' to leave everything running, then:"
    fi
    cat <<EOF
  source .demo/env                              # HOOKLINE_* of the run, and alias hookline=...
  hookline dlq list                             # the dead-lettered delivery
  hookline dlq redeliver --all                  # back on the delivery path with fresh attempts
  hookline publish order.paid '{"order_id":42}' # watch the receiver lines
  hookline subscriptions deactivate $FAIL_ID
  nats --server $NATS_URL stream ls
  nats --server $NATS_URL stream subjects ${stream}_DELIVERIES   # pending retries per endpoint
  nats --server $NATS_URL stream view ${stream}_DLQ
  less .demo/hookline.log                       # every attempt, retry and dead-letter
EOF
    if ! command -v nats >/dev/null 2>&1; then
        echo "  (the nats CLI: go install github.com/nats-io/natscli/nats@latest)"
    fi
    if ! printf '%s\n' "${STARTED[@]}" | grep -q nats-server; then
        echo "  (the streams ${stream}_EVENTS, _DELIVERIES, _DLQ, _ATTEMPTS and the bucket ${stream}_SUBSCRIPTIONS stay on $NATS_URL; remove them with nats stream rm and nats kv del)"
    fi
}

main() {
    cd "$ROOT"
    prepare_dir
    ensure_deps
    ensure_nats
    ensure_redis
    build
    export_config
    start_hookline
    create_subscriptions
    start_receiver
    publish_events
    say "Waiting for deliveries, the retry and the DLQ entry (at most ${DEADLINE_SECS}s)"
    wait_for_outcomes
    show_state
    summary
    say "Demo finished: signed deliveries, a retry and a dead-letter, all through JetStream"
}

main
