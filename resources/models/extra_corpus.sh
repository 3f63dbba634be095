#!/usr/bin/env bash
# The three soundtracks the default model trained on beside ../shared/data/training_corpus.sh's
# four (about 4.9 h more, OGG Vorbis and Opus), from Debian's archive (about 300 MB of downloads;
# only the music is kept):
#   extra_corpus.sh DIR        -> DIR/warzone2100, DIR/warmux, DIR/openclonk
# Warzone 2100's three albums keep their album name in the file name (their track numbers repeat).
# Nothing here is to be committed to the project.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/debs.sh"  # get, unpack
DIR=${1:?usage: extra_corpus.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/extra.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

if [ -z "$(ls -A "$DIR/warzone2100" 2>/dev/null)" ]; then
  unpack warzone2100-music; mkdir -p "$DIR/warzone2100"
  for f in x/usr/share/games/warzone2100/music/albums/*/*.opus; do
    cp "$f" "$DIR/warzone2100/$(basename "$(dirname "$f")")_$(basename "$f")"
  done
fi
if [ -z "$(ls -A "$DIR/warmux" 2>/dev/null)" ]; then
  unpack warmux-data; mkdir -p "$DIR/warmux"
  cp x/usr/share/games/warmux/music/*/*.ogg "$DIR/warmux/"
fi
if [ -z "$(ls -A "$DIR/openclonk" 2>/dev/null)" ]; then
  unpack openclonk-data; mkdir -p "$DIR/openclonk"
  cp x/usr/share/games/openclonk/Music.ocg/*.ogg "$DIR/openclonk/"
fi
echo "extra corpus in $DIR:"; for d in "$DIR"/*/; do echo "  $(basename "$d"): $(ls "$d" | wc -l) files"; done
