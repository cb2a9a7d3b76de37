#!/usr/bin/env bash
# The README's main command: install into .venv if needed, then run the tour.
#   ./scripts/demo.sh [tour options]           the headline features, embedded defaults, no server
#   ./scripts/demo.sh --services [options]     the example services (examples/) as processes
# Options go to `commerce-observe tour` (e.g. --orders 100) or to
# `python -m examples.run_all` (e.g. --orders 20 --kafka 127.0.0.1:9092). On a terminal
# the tour ends by serving the dashboard until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
stamp=".venv/.demo-installed-$(cat pyproject.toml <(pwd) | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    echo "demo.sh: installing commerce-observe into .venv (first run only)" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[all,examples]'
    touch "$stamp"
fi
if [ "${1:-}" = "--services" ]; then
    shift
    exec .venv/bin/python -m examples.run_all "$@"
fi
serve=()
[ -t 1 ] && serve=(--serve)
exec .venv/bin/python -m commerce_observe tour "${serve[@]}" "$@"
