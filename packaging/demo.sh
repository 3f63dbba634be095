#!/usr/bin/env bash
# Set up everything, fetch a small library of real, freely licensed music from Debian's
# archive (game soundtracks in OGG and MIDI, plus tagged MP3 copies), index it and show
# similar tracks. Re-running is fast: nothing is downloaded or analysed twice.
#   bash packaging/demo.sh [DEMO_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/setup.sh
DEMO=${1:-${MUSICSIM_DEMO_DIR:-$HOME/.cache/musicsim/demo-library}}
bash packaging/fetch_demo_library.sh "$DEMO"
export MUSICSIM_HOME=${MUSICSIM_HOME:-$HOME/.local/share/musicsim-demo}
MS=.venv/bin/musicsim
$MS scan "$DEMO" || true          # exit 1 only means some files failed; they are listed
$MS status
seed=$(find "$DEMO" -name '*.ogg' | sort | head -n 1)
$MS similar "$seed" -n 8
if [ "${MUSICSIM_NO_GUI:-}" != "1" ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && $MS --help | grep -q " gui"; then
  exec $MS gui
fi
