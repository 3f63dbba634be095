#!/usr/bin/env bash
# Screenshots of the desktop app's main views (run under Xvfb), on a generated library or on
# real music:
#   bash packaging/screenshots.sh [OUT_DIR] [--library DIR --seed TEXT --train-minutes M]
# docs/screenshots/ shows the demo library (packaging/fetch_demo_library.sh DEMO):
#   bash packaging/screenshots.sh docs/screenshots --library DEMO --seed Ride-A-Long --train-minutes 1
# Writes first-run.png, library-similarity.png, cluster-map.png, clusters-coarse.png,
# clusters-fine.png, explanation.png, outliers.png, duplicates.png, training.png.
# Nothing outside OUT_DIR and a temporary folder is written (not your library, not your settings).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-docs/screenshots}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT"
if [ -n "${DISPLAY:-}" ] && [ "${SCREENSHOTS_USE_DISPLAY:-0}" = 1 ]; then
  exec "$PY" packaging/screenshots.py "$OUT" "${@:2}"
fi
command -v xvfb-run >/dev/null || { echo "screenshots: xvfb-run is needed (apt-get install xvfb)" >&2; exit 1; }
exec xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb "$PY" packaging/screenshots.py "$OUT" "${@:2}"
