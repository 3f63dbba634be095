#!/usr/bin/env bash
# Build the standalone one-folder bundle with PyInstaller (CPU torch, PySide6, FluidSynth's
# library and a General MIDI SoundFont inside), and an archive of it:
#   bash packaging/build_bundle.sh [OUT_DIR]      # default build/bundle (ignored by git)
# Gives OUT_DIR/dist/musicsim/ (run ./musicsim in it) and OUT_DIR/musicsim-VERSION-OS-ARCH.tar.gz.
# Uses the checkout's .venv (packaging/setup.sh); PYTHON=... picks another environment, which
# must hold musicsim's dependencies with a CPU build of torch (a CUDA build works, but the
# bundle grows by gigabytes). MUSICSIM_BUNDLE_SOUNDFONT=FILE bundles another SoundFont than
# pretty_midi's small TimGM6mb (e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2, 142 MB).
# Takes several minutes and about 3 GB of disk; packaging/test_bundle.sh tests the result.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-build/bundle}" && cd "${1:-build/bundle}" && pwd)
if [ -z "${PYTHON:-}" ]; then
  bash packaging/setup.sh
  PY=.venv/bin/python
else
  PY=$PYTHON
fi
"$PY" -m PyInstaller --version >/dev/null 2>&1 || "$PY" -m pip install -q "pyinstaller>=6.10"
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.version.cuda is None else 1)'; then :; else
  echo "build_bundle: warning: this torch is a CUDA build; the bundle will carry its GPU libraries" >&2
fi
version=$("$PY" -c 'import musicsim; print(musicsim.__version__)')
plat=$("$PY" -c 'import platform, sys; print(f"{sys.platform}-{platform.machine()}")')
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$OUT/dist" --workpath "$OUT/work" packaging/bundle/musicsim.spec
archive="$OUT/musicsim-$version-$plat.tar.gz"
tar -C "$OUT/dist" -cf - musicsim | gzip -6 > "$archive"
echo "build_bundle: $(($(date +%s) - start)) s"
echo "build_bundle: bundle $(du -sh "$OUT/dist/musicsim" | cut -f1) in $OUT/dist/musicsim"
echo "build_bundle: archive $(du -sh "$archive" | cut -f1) $archive"
