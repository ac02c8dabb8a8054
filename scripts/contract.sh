#!/usr/bin/env bash
# contract.sh — the admin API's contract test: schemathesis against a live hookline.
#
# Owns: .contract/ (server data and logs of one run). Starts a throw-away nats-server (the pinned
# binary in $HOOKLINE_TEST_NATS_SERVER, else the newest pinned one) and redis-server on free
# ports, builds and starts `hookline serve`, then runs schemathesis (pinned, installed by
# scripts/ensure-deps.sh) with the document the server serves at /openapi.json: every phase,
# the stateful one included (it follows the document's links from create to get, update,
# delete, activate, deactivate), with the checks that no request gets a server error and that
# every status code and response body conforms to the document. Exits non-zero on any failure
# and stops everything it started.
#
# Usage: bash scripts/contract.sh [--max-examples N]   (default 100 per operation)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.contract"
SCHEMATHESIS_VERSION=4.32.5   # keep in step with scripts/ensure-deps.sh
ST="$ROOT/.deps/schemathesis-$SCHEMATHESIS_VERSION/bin/schemathesis"
NATS_BIN="${HOOKLINE_TEST_NATS_SERVER:-$ROOT/.deps/nats-server-2.15.1/bin/nats-server}"
MAX_EXAMPLES=100
while [ "$#" -gt 0 ]; do
    case "$1" in
        --max-examples) MAX_EXAMPLES="$2"; shift 2 ;;
        *) echo "contract: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$ST" ] || { echo "contract: $ST missing: run scripts/ensure-deps.sh" >&2; exit 1; }
[ -x "$NATS_BIN" ] || { echo "contract: $NATS_BIN missing: run scripts/ensure-deps.sh" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for the command in "$@:3" to succeed.
wait_for() {
    local what="$1" secs="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "contract: $what not ready after ${secs}s; logs in $RUN" >&2
            return 1
        fi
        sleep 0.2
    done
}

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

rm -rf "$RUN"
mkdir -p "$RUN/nats" "$RUN/redis"
NATS_PORT="$(free_port)"
REDIS_PORT="$(free_port)"
API_PORT="$(free_port)"
TOKEN="contract-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

"$NATS_BIN" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$RUN/nats" >"$RUN/nats.log" 2>&1 &
PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$RUN/redis" >"$RUN/redis.log" 2>&1 &
PIDS+=($!)
wait_for "redis-server" 20 redis-cli -p "$REDIS_PORT" ping

cargo build --quiet --bin hookline
HOOKLINE_NATS__URL="nats://127.0.0.1:$NATS_PORT" \
HOOKLINE_REDIS__URL="redis://127.0.0.1:$REDIS_PORT/" \
HOOKLINE_STREAMS__PREFIX="contract" \
HOOKLINE_API__LISTEN="127.0.0.1:$API_PORT" \
HOOKLINE_API__ADMIN_TOKENS="[\"$TOKEN\"]" \
HOOKLINE_API__CONSOLE_LINK_KEY="contract-console-link-key-$TOKEN" \
HOOKLINE_EGRESS__ALLOW_CIDRS='["127.0.0.0/8"]' \
HOOKLINE_LOG__FORMAT=json \
    "${CARGO_TARGET_DIR:-$ROOT/target}/debug/hookline" serve >"$RUN/hookline.log" 2>&1 &
PIDS+=($!)
wait_for "hookline" 60 python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$API_PORT/readyz"

echo "contract: schemathesis $SCHEMATHESIS_VERSION against http://127.0.0.1:$API_PORT"
# GET /v1/live is an endless server-sent-event stream: a request/response fuzzer would wait on
# it forever. Its parameters are checked by tests/it/console/live.rs instead.
"$ST" --no-color run "http://127.0.0.1:$API_PORT/openapi.json" \
    --exclude-operation-id live \
    --header "Authorization: Bearer $TOKEN" \
    --phases examples,coverage,fuzzing,stateful \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed 1 \
    --report junit --report-dir "$RUN/report"
