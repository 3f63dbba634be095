#!/usr/bin/env bash
# The rest of the allowed sources' music that neither the training corpus, extra_corpus.sh nor
# the evaluation suite (tests/benchmarks/suite_libraries.sh) uses: about 1.3 h in 27 tracks,
# from Debian's archive (about 660 MB of downloads; only the music is kept):
#   broad_corpus.sh DIR   -> DIR/asc, DIR/fretsonfire, DIR/lugaru, DIR/various
# Frets on Fire ships each song as a backing track and a guitar part: they are mixed into one
# track. Tracker and WavPack files are rendered to FLAC with ffmpeg. Needs apt-get and ffmpeg.
# Nothing here is to be committed to the project.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/debs.sh"  # get, unpack
shopt -s nullglob
DIR=${1:?usage: broad_corpus.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/broad.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
command -v ffmpeg >/dev/null || { apt-get update -qq; apt-get install -y -qq ffmpeg >/dev/null; }
flac() { # src dest-folder
  mkdir -p "$2"
  out="$2/$(basename "${1%.*}").flac"
  [ -f "$out" ] || ffmpeg -nostdin -loglevel error -i "$1" -ar 44100 -t 600 "$out"
}
done_() { [ -n "$(ls -A "$DIR/$1" 2>/dev/null)" ]; }

if ! done_ asc; then
  unpack asc-music; mkdir -p "$DIR/asc"; cp x/usr/share/games/asc/music/*.mp3 "$DIR/asc/"
fi
if ! done_ fretsonfire; then
  mkdir -p "$DIR/fretsonfire"
  for p in fretsonfire-songs-muldjord fretsonfire-songs-sectoid; do
    unpack "$p"
    for d in x/usr/share/games/fretsonfire/data/songs/*/*/; do
      parts=("$d"song.ogg "$d"guitar.ogg "$d"rhythm.ogg)
      inputs=(); for f in "${parts[@]}"; do [ -f "$f" ] && inputs+=(-i "$f"); done
      n=$((${#inputs[@]} / 2))
      [ "$n" -gt 0 ] || continue
      name=$(basename "$d" | tr ' ' '_')
      ffmpeg -nostdin -loglevel error "${inputs[@]}" \
        -filter_complex "amix=inputs=$n:normalize=0" -ar 44100 "$DIR/fretsonfire/$name.flac"
    done
  done
fi
if ! done_ lugaru; then
  unpack lugaru-data; mkdir -p "$DIR/lugaru"; cp x/usr/share/games/lugaru/Sounds/Music*.ogg "$DIR/lugaru/"
fi
if ! done_ various; then
  mkdir -p "$DIR/various"
  unpack freeorion-data; cp x/usr/share/games/freeorion/default/data/sound/artificial_intelligence_v3.ogg "$DIR/various/freeorion.ogg"
  unpack powermanga-data
  for f in x/usr/share/games/powermanga/sound/handheld_console/music_*.ogg; do cp "$f" "$DIR/various/powermanga_$(basename "$f")"; done
  unpack scorched3d-data
  for f in x/usr/share/games/scorched3d/data/globalmods/none/data/music/*.ogg; do cp "$f" "$DIR/various/scorched3d_$(basename "$f")"; done
  unpack cube2-data; cp x/usr/share/games/cube2/packages/music/*.ogg "$DIR/various/"
  unpack csmash-demosong; cp x/usr/share/games/csmash/*.ogg "$DIR/various/"
  unpack teeworlds-data; flac x/usr/share/games/teeworlds/data/audio/music_menu.wv "$DIR/various"
  unpack fb-music-high; flac x/usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.xm "$DIR/various"
fi
echo "broad corpus in $DIR:"; for d in "$DIR"/*/; do echo "  $(basename "$d"): $(ls "$d" | wc -l) files"; done
