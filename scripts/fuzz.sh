#!/usr/bin/env bash
# fuzz.sh — runs each cargo-fuzz target (fuzz/fuzz_targets/) for a while and keeps what it finds.
#
# Owns: fuzz/corpus/<target> (the growing corpus, not committed) and the hand-off of findings:
# a crash, timeout or out-of-memory input is copied into fuzz/regressions/<target>/, which the
# test `fuzz_regressions` (tests/it) replays on every `cargo test` — commit it with the fix.
# The properties checked are in testkit/src/fuzz_checks.rs.
#
# Needs the nightly toolchain (libFuzzer instrumentation) and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
#
# Usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 60; targets default to all: event_parse signature filter config egress
# Exit status: 0 when no target found anything, 1 otherwise (after running them all).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

SECS="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=(event_parse signature filter config egress)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

found=()
for target in "${TARGETS[@]}"; do
    mkdir -p "corpus/$target" "regressions/$target"
    echo "== fuzzing $target for ${SECS}s"
    # The first corpus dir receives new inputs; the saved regressions seed the run.
    if cargo +nightly fuzz run "$target" "corpus/$target" "regressions/$target" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "== $target: nothing found"
    else
        found+=("$target")
        for artifact in artifacts/"$target"/*; do
            [ -f "$artifact" ] || continue
            cp "$artifact" "regressions/$target/"
            echo "== $target: saved $(basename "$artifact") to fuzz/regressions/$target/ (replayed by the test fuzz_regressions)"
        done
    fi
done

if [ "${#found[@]}" -gt 0 ]; then
    echo "fuzz: findings in ${found[*]}; reproduce with: cd fuzz && cargo +nightly fuzz run <target> <file>" >&2
    exit 1
fi
echo "fuzz: ${TARGETS[*]}: nothing found in ${SECS}s each"
