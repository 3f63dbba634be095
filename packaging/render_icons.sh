#!/usr/bin/env bash
# Render the app icon's PNG sizes for desktop integration from the one SVG source
# (resources/icons/musicsim.svg) into resources/desktop/icons/NxN.png. The PNGs are committed;
# re-run after changing the SVG. Needs rsvg-convert (Debian: librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rsvg-convert >/dev/null || { echo "render_icons: rsvg-convert is needed (apt-get install librsvg2-bin)" >&2; exit 1; }
mkdir -p resources/desktop/icons
for n in 16 24 32 48 64 128 256 512; do
  rsvg-convert -w "$n" -h "$n" resources/icons/musicsim.svg -o "resources/desktop/icons/${n}x${n}.png"
done
ls -l resources/desktop/icons
