#!/usr/bin/env bash
# Test the standalone bundle as a user gets it: unpack the archive into an empty folder and, with
# a clean environment (no venv, no checkout, no PYTHONPATH; only /usr/bin:/bin on PATH), run its
# command line on a generated library (scan, similar, playlist, export, status) and start the app
# under Xvfb, saving a screenshot. Prints the bundle's size, the archive's size, the unpack time
# and the time to first window.
#   bash packaging/test_bundle.sh [ARCHIVE] [OUT_DIR]
# ARCHIVE defaults to the newest build/bundle/musicsim-*.tar.gz (packaging/build_bundle.sh);
# OUT_DIR (default build/bundle/test) receives the screenshot and the log.
# Needs the checkout's .venv (to generate the test library) and xvfb-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ARCHIVE=${1:-$(ls -t build/bundle/musicsim-*.tar.gz 2>/dev/null | head -n 1)}
[ -f "$ARCHIVE" ] || { echo "test_bundle: no archive (run bash packaging/build_bundle.sh first)" >&2; exit 2; }
ARCHIVE=$(cd "$(dirname "$ARCHIVE")" && pwd)/$(basename "$ARCHIVE")
OUT=$(mkdir -p "${2:-build/bundle/test}" && cd "${2:-build/bundle/test}" && pwd)
command -v xvfb-run >/dev/null || { echo "test_bundle: xvfb-run is needed (apt-get install xvfb xauth)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/musicsim-bundle-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
say() { echo "test_bundle: $*"; }

t0=$(date +%s.%N)
mkdir "$WORK/app" && tar -C "$WORK/app" -xzf "$ARCHIVE"
say "unpacked in $(printf %.1f "$(echo "$(date +%s.%N) - $t0" | bc)") s"
MS="$WORK/app/musicsim/musicsim"
[ -x "$MS" ] || { echo "test_bundle: $MS missing" >&2; exit 1; }

# The test library is made with the checkout's tools, before the clean environment starts.
.venv/bin/python - "$WORK/music" <<'PY'
import sys
from pathlib import Path
from tests.fixtures.generate import make_library, write_midi
root = Path(sys.argv[1])
make_library(root, per_family=2, seconds=5.0, formats=(".wav", ".flac", ".ogg"))
write_midi(root / "midi" / "piano.mid", program=0, seconds=5.0)
PY

# A clean environment: nothing from this shell, the venv or the checkout.
clean() {
  env -i HOME="$WORK/home" PATH=/usr/bin:/bin LANG=C.UTF-8 MUSICSIM_HOME="$WORK/home/musicsim" \
    MUSICSIM_WORKERS=2 ${DISPLAY:+DISPLAY="$DISPLAY"} ${XAUTHORITY:+XAUTHORITY="$XAUTHORITY"} "$@"
}
cd "$WORK"
mkdir -p home
clean "$MS" --version
clean "$MS" --bundle-info | tee "$OUT/bundle-info.txt"
grep -q "fluidsynth: $WORK/app/" "$OUT/bundle-info.txt" || { echo "test_bundle: FluidSynth is not the bundle's" >&2; exit 1; }
grep -q "(loads: True)" "$OUT/bundle-info.txt"
clean "$MS" scan "$WORK/music"
clean "$MS" status | tee "$OUT/status.txt"
! grep -q "degraded\|FluidSynth was not found" "$OUT/status.txt" || { echo "test_bundle: MIDI degraded" >&2; exit 1; }
seed=$(ls "$WORK"/music/sine/*.wav | head -n 1)
clean "$MS" similar "$seed" -n 3
clean "$MS" playlist --seed "$seed" -n 5 --out "$WORK/mix.m3u8"
test -s "$WORK/mix.m3u8"
clean "$MS" export --out "$WORK/library.npz"
test -s "$WORK/library.npz"

# The app under Xvfb: time to the first visible main window, then a screenshot of the screen.
rm -f "$OUT/screenshot.png" "$WORK/first-window"
start=$(date +%s.%N)
xvfb-run -a -s "-screen 0 1280x800x24" bash -c "$(declare -f clean); WORK='$WORK'; \
  clean MUSICSIM_BUNDLE_FIRST_WINDOW='$WORK/first-window' MUSICSIM_BUNDLE_SCREENSHOT='$OUT/screenshot.png' \
  QT_QPA_PLATFORM=xcb '$MS' gui" 2>&1 | tail -n 20
[ -s "$OUT/screenshot.png" ] || { echo "test_bundle: no screenshot" >&2; exit 1; }
first=$(cat "$WORK/first-window")
cd "$ROOT"
say "bundle $(du -sh "$WORK/app/musicsim" | cut -f1), archive $(du -sh "$ARCHIVE" | cut -f1) ($(basename "$ARCHIVE"))"
say "time to first window $(printf %.2f "$(echo "$first - $start" | bc)") s (cold start of the unpacked bundle, Xvfb)"
say "screenshot $OUT/screenshot.png"
say "passed"
