#!/usr/bin/env bash
# The README's main command: install into .venv if needed, then run the demo.
# Arguments go to `commerce-observe demo` (e.g. --zipkin http://127.0.0.1:9411).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/commerce-observe ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -e '.[all]'
fi
exec .venv/bin/commerce-observe demo "$@"
