#!/usr/bin/env bash
# The README's main command: install into .venv if needed, then run the demo.
#   ./scripts/demo.sh [demo options]          in-process order-to-payment flow
#   ./scripts/demo.sh --services [options]    the example services (examples/) as processes
# Options go to `commerce-observe demo` (e.g. --zipkin http://127.0.0.1:9411) or to
# `python -m examples.run_all` (e.g. --orders 20 --kafka 127.0.0.1:9092).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/commerce-observe ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -e '.[all,examples]'
fi
if [ "${1:-}" = "--services" ]; then
    shift
    exec .venv/bin/python -m examples.run_all "$@"
fi
exec .venv/bin/commerce-observe demo "$@"
