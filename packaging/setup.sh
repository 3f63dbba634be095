#!/usr/bin/env bash
# One-time (and fast to repeat) set-up on Debian/Ubuntu: system packages via apt-get,
# then .venv/ in the checkout with musicsim installed into it.
#   bash packaging/setup.sh           # runtime + test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SYSTEM_PACKAGES=(
  python3 python3-venv                                # every Python dependency is a wheel: no compiler
  ffmpeg libsndfile1                                  # M4A/AAC/WMA decoding; audio I/O
  sox flac lame vorbis-tools opus-tools               # tests: the real-world decoding corpus (tests/robustness/realworld.py)
  libfluidsynth3 fluid-soundfont-gm                   # MIDI rendering with a General MIDI SoundFont
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
  xvfb xauth                                          # a real window for GUI tests and screenshots
  mpd                                                 # a real MPD for the Play in MPD tests (null output)
)

missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
# Re-install only when the dependency list changed.
stamp=.venv/.musicsim-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  # The pinned wheel: the CPU build where that is what the index offers, the CUDA build on a GPU machine.
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi
echo "setup: ready ($("$ROOT/.venv/bin/python" -c 'import torch, musicsim; print("musicsim", musicsim.__version__, "torch", torch.__version__)'))"
