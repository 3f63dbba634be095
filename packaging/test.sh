#!/usr/bin/env bash
# Set up everything, then check and test the whole tree (the README's test command; CI runs it):
# lint, format, types on the core ([tool.mypy] files in pyproject.toml), then the test suite.
# Arguments go to pytest, e.g. `bash packaging/test.sh tests/organize` or `-m perf`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup.sh
echo "test: ruff check"
.venv/bin/python -m ruff check .
echo "test: ruff format --check"
.venv/bin/python -m ruff format --check .
echo "test: mypy"
.venv/bin/python -m mypy
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q "$@"
