#!/usr/bin/env bash
# test.sh — the project's test command: every test, once per supported NATS server version.
#
# Owns: the version matrix and the order of the suites. Runs scripts/ensure-deps.sh, then
# `cargo test --workspace --all-targets` (the service, the test kit and the benchmark; or
# `cargo test <args>` when arguments are given) with HOOKLINE_TEST_NATS_SERVER pointing at
# the pinned binary of each version, newest first. Cargo's own output is kept untouched so its
# `test result:` lines can be read; the script fails if any run fails, after running them all.
set -euo pipefail

# Keep in step with NATS_VERSIONS in scripts/ensure-deps.sh.
NATS_VERSIONS=(2.15.1 2.12.8)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash "$ROOT/scripts/ensure-deps.sh"

if [ "$#" -gt 0 ]; then
    cargo_args=("$@")
else
    cargo_args=(--workspace --all-targets)
fi

failed=()
for ver in "${NATS_VERSIONS[@]}"; do
    bin="$ROOT/.deps/nats-server-$ver/bin/nats-server"
    echo
    echo "=================================================================="
    echo "== cargo test ${cargo_args[*]} against nats-server $ver"
    echo "== HOOKLINE_TEST_NATS_SERVER=$bin"
    echo "=================================================================="
    if HOOKLINE_TEST_NATS_SERVER="$bin" cargo test "${cargo_args[@]}"; then
        echo "== nats-server $ver: ok"
    else
        echo "== nats-server $ver: FAILED"
        failed+=("$ver")
    fi
done

# The admin API's contract test (schemathesis against a live hookline, scripts/contract.sh):
# once, on the newest server, and only with the whole suite (not when arguments pick tests).
if [ "$#" -eq 0 ]; then
    echo
    echo "== contract test (schemathesis) against nats-server ${NATS_VERSIONS[0]}"
    if HOOKLINE_TEST_NATS_SERVER="$ROOT/.deps/nats-server-${NATS_VERSIONS[0]}/bin/nats-server" \
        bash "$ROOT/scripts/contract.sh"; then
        echo "== contract test: ok"
    else
        echo "== contract test: FAILED"
        failed+=("contract test")
    fi
fi

echo
if [ "${#failed[@]}" -gt 0 ]; then
    echo "test.sh: failing: ${failed[*]}" >&2
    exit 1
fi
echo "test.sh: all tests passed against nats-server ${NATS_VERSIONS[*]}, contract test included"
