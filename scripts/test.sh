#!/usr/bin/env bash
# The project's test command: `bash scripts/test.sh [pytest args]`.
#
# It sets up everything itself on a fresh machine (virtualenv, the project with its
# [all,test] extras, Debian packages for the real servers), starts the test bed's real
# Zipkin, Kafka, Elasticsearch (also behind an nginx TLS proxy), RabbitMQ and an OTLP
# receiver (Jaeger, plain and over TLS) on loopback, runs pytest against them, and always stops the servers
# again. It exits with pytest's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { echo "test.sh: $*" >&2; }

# --- Debian packages the test bed needs -------------------------------------------
need_pkgs=()
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need_pkgs+=(rabbitmq-server)
command -v java >/dev/null || need_pkgs+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need_pkgs+=(maven)
command -v flock >/dev/null || need_pkgs+=(util-linux)
command -v exim4 >/dev/null || need_pkgs+=(exim4-daemon-light)   # the real SMTP server of the alert tests
command -v chromium >/dev/null || need_pkgs+=(chromium)          # headless browser of the dashboard tests
command -v promtool >/dev/null || need_pkgs+=(prometheus)        # promtool checks deploy/prometheus/ rules
[ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)               # TLS + auth proxy in front of Elasticsearch
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing Debian packages: ${need_pkgs[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    # Keep package scripts from starting system services (a system RabbitMQ): the test
    # bed runs its own node. policy-rc.d is honoured by invoke-rc.d and deb-systemd-invoke.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod 755 /usr/sbin/policy-rc.d
        made_policy=yes
    fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    [ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
    if [[ " ${need_pkgs[*]} " == *" rabbitmq-server "* ]] && pgrep -u rabbitmq beam.smp >/dev/null; then
        say "stopping the system RabbitMQ service that the package started"
        $sudo invoke-rc.d rabbitmq-server stop >/dev/null 2>&1 || $sudo service rabbitmq-server stop >/dev/null 2>&1 || true
    fi
fi

# The OTLP receiver (Jaeger v2) is built from the Go module proxy with the machine's
# Go (1.24 or newer; Debian bookworm's golang-go is 1.19, too old): testbed/jaeger.py.
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { say "go (1.24+) is needed to build the OTLP receiver; none on PATH"; exit 1; }

# --- Python environment -----------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "${PYTHON:-python3}" -m venv .venv
fi
py="$repo/.venv/bin/python"
stamp=".venv/.installed-$(cat pyproject.toml <(echo "$repo") | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    say "installing the project with its [all,test] extras"
    "$py" -m pip install -q --disable-pip-version-check -e '.[all,test]'
    touch "$stamp"
fi

# --- the test bed -------------------------------------------------------------------
# One run at a time owns .cache/testbed; a second run in the same tree gets its own.
mkdir -p .cache
if [ -z "${TESTBED_HOME:-}" ]; then
    exec 9>.cache/testbed.lock
    if flock -n 9; then
        export TESTBED_HOME="$repo/.cache/testbed"
    else
        export TESTBED_HOME="$repo/.cache/testbed-run-$$"
        say "another run holds .cache/testbed; this one uses $TESTBED_HOME"
    fi
fi

stop_testbed() {
    local rc=$?
    "$py" -m testbed down || true
    case "$TESTBED_HOME" in  # a side run's folder goes, unless its logs may be needed
        */testbed-run-*) [ "$rc" -ne 0 ] || rm -rf "$TESTBED_HOME" ;;
    esac
}
trap stop_testbed EXIT

exports=$("$py" -m testbed up) || { say "the test bed did not come up (logs: $TESTBED_HOME/logs)"; exit 1; }
eval "$exports"
export COMMERCE_OBSERVE_TEST_ZIPKIN_URL COMMERCE_OBSERVE_TEST_KAFKA_BOOTSTRAP \
    COMMERCE_OBSERVE_TEST_ELASTICSEARCH_URL COMMERCE_OBSERVE_TEST_RABBITMQ_URL \
    COMMERCE_OBSERVE_TEST_OTLP_HTTP_ENDPOINT COMMERCE_OBSERVE_TEST_OTLP_GRPC_ENDPOINT \
    COMMERCE_OBSERVE_TEST_OTLP_QUERY_URL COMMERCE_OBSERVE_TEST_KAFKA_SASL_SSL_BOOTSTRAP \
    COMMERCE_OBSERVE_TEST_KAFKA_CA_FILE COMMERCE_OBSERVE_TEST_KAFKA_CLIENT_CERT COMMERCE_OBSERVE_TEST_KAFKA_CLIENT_KEY \
    COMMERCE_OBSERVE_TEST_KAFKA_SASL_USERNAME COMMERCE_OBSERVE_TEST_KAFKA_SASL_PASSWORD \
    COMMERCE_OBSERVE_TEST_ES_TLS_URL COMMERCE_OBSERVE_TEST_ES_TLS_CA_FILE COMMERCE_OBSERVE_TEST_ES_TLS_USERNAME \
    COMMERCE_OBSERVE_TEST_ES_TLS_PASSWORD COMMERCE_OBSERVE_TEST_ES_TLS_API_KEY \
    COMMERCE_OBSERVE_TEST_OTLP_TLS_HTTP_ENDPOINT COMMERCE_OBSERVE_TEST_OTLP_TLS_GRPC_ENDPOINT \
    COMMERCE_OBSERVE_TEST_OTLP_TLS_MTLS_HTTP_ENDPOINT COMMERCE_OBSERVE_TEST_OTLP_TLS_MTLS_GRPC_ENDPOINT \
    COMMERCE_OBSERVE_TEST_OTLP_TLS_QUERY_URL COMMERCE_OBSERVE_TEST_OTLP_TLS_CA_FILE \
    COMMERCE_OBSERVE_TEST_OTLP_TLS_CLIENT_CERT COMMERCE_OBSERVE_TEST_OTLP_TLS_CLIENT_KEY

status=0
"$py" -m pytest "$@" || status=$?

# --- the oldest supported OpenTelemetry ---------------------------------------------
# The private fast paths (commerce_observe/agent/_compat/) are checked against both ends
# of the supported range: the run above has the newest, this one the oldest.
oldest_py="$repo/.venv-oldest/bin/python"
oldest_stamp=".venv-oldest/.installed-$(cat pyproject.toml tests/compat/oldest.txt <(echo "$repo") | sha256sum | cut -c1-16)"
if [ ! -e "$oldest_stamp" ]; then
    say "installing the oldest supported OpenTelemetry into .venv-oldest"
    rm -rf .venv-oldest && "${PYTHON:-python3}" -m venv .venv-oldest
    "$oldest_py" -m pip install -q --disable-pip-version-check -c tests/compat/oldest.txt -e . \
        pytest pytest-timeout hypothesis jsonschema opentelemetry-exporter-zipkin-json \
        opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc
    touch "$oldest_stamp"
fi
say "fast-path tests against the oldest supported OpenTelemetry"
# (OTLP export needs the OTLP exporters, whose supported range starts later: not here.)
"$oldest_py" -m pytest -q -p no:cacheprovider --ignore-glob='*otlp*' tests/compat tests/export tests/propagation \
    tests/core/test_runtime.py tests/core/test_events.py tests/core/test_hub.py tests/core/test_dual_export.py \
    || status=$?
exit "$status"
