#!/usr/bin/env bash
# Set up everything, then run the whole test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup.sh
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q "$@"
