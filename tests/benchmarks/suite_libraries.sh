#!/usr/bin/env bash
# Build the evaluation suite for `python -m trainer.suite SUITE`:
#   bash tests/benchmarks/suite_libraries.sh SUITE
#
# Three libraries, one folder per label, from Debian packages in the allowed sources that no
# shipped model trained on (../shared/data/allowed_sources.md; the default trained on the two
# corpus scripts' seven soundtracks):
#   soundtracks  freedroidrpg 16, hedgewars 26, supertux 51, wesnoth 41 tracks
#   mixed-a      redeclipse 12, tecnoballz 15 (MOD), blobwars 15, frozen-bubble 21 (music and effects)
#   mixed-b      pingus 20 (IT/S3M), freedink 17 (MIDI and OGG), openmsx 31 (MIDI), extreme-tux-racer 10
# Tracker modules are rendered to FLAC with ffmpeg's libopenmpt (musicsim does not read them).
# The allowed sources hold only eleven labels of 12 tracks or more outside the training corpus:
# extreme-tux-racer is the twelfth, with 10. Needs apt-get (root) and ffmpeg. Never commit music.
set -euo pipefail
DIR=${1:?usage: suite_libraries.sh SUITE}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
work="$DIR/.debs"
mkdir -p "$work"
command -v ffmpeg >/dev/null || { apt-get update -qq; apt-get install -y -qq ffmpeg >/dev/null; }
cd "$work"
PKGS="freedroidrpg-data hedgewars-data supertux-data wesnoth-1.16-music redeclipse-data tecnoballz-data
blobwars-data frozen-bubble-data pingus-data freedink-data openttd-openmsx extremetuxracer-data"
for p in $PKGS; do
  ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 || { apt-get update -qq; apt-get download "$p" >/dev/null; }
done
# Only the folders used below are unpacked (redeclipse-data is 860 MB, mostly maps and textures).
for f in *.deb; do
  d="$work/x/${f%%_*}"
  [ -d "$d" ] && continue
  mkdir -p "$d"
  dpkg-deb --fsys-tarfile "$f" | tar -x -C "$d" --wildcards \
    '*/music/*' '*/Music/*' '*/musics/*' '*/dink/Sound/*' '*/snd/*' '*/openmsx/*' 2>/dev/null || true
done
x="$work/x"
link() { # dest-folder src-file [name]
  mkdir -p "$DIR/$1"
  ln -sf "$2" "$DIR/$1/${3:-$(basename "$2")}"
}
render() { # dest-folder module-file: a FLAC rendering of a tracker module
  mkdir -p "$DIR/$1"
  out="$DIR/$1/$(basename "${2%.*}").flac"
  [ -f "$out" ] || ffmpeg -nostdin -loglevel error -i "$2" -ar 44100 -t 600 "$out"
}
for f in "$x"/freedroidrpg-data/usr/share/freedroidrpg/data/sound/music/*.ogg; do link soundtracks/freedroidrpg "$f"; done
for f in "$x"/hedgewars-data/usr/share/games/hedgewars/Data/Music/*.ogg; do link soundtracks/hedgewars "$f"; done
for f in "$x"/supertux-data/usr/share/games/supertux2/music/*/*.ogg; do
  link soundtracks/supertux "$f" "$(basename "$(dirname "$f")")_$(basename "$f")"
done
for f in "$x"/wesnoth-1.16-music/usr/share/games/wesnoth/1.16/data/core/music/*.ogg; do link soundtracks/wesnoth "$f"; done
for f in "$x"/redeclipse-data/usr/share/games/redeclipse/data/sounds/music/*.ogg; do link mixed-a/redeclipse "$f"; done
for f in "$x"/tecnoballz-data/usr/share/games/tecnoballz/musics/*; do render mixed-a/tecnoballz "$f"; done
for f in "$x"/blobwars-data/usr/share/games/blobwars/music/*; do
  case "$f" in *.tags) ;; *) link mixed-a/blobwars "$f" "$(basename "$f").ogg" ;; esac
done
for f in "$x"/frozen-bubble-data/usr/share/games/frozen-bubble/snd/*.ogg; do link mixed-a/frozen-bubble "$f"; done
for f in "$x"/pingus-data/usr/share/games/pingus/data/music/*.it "$x"/pingus-data/usr/share/games/pingus/data/music/*.s3m; do
  render mixed-b/pingus "$f"
done
for f in "$x"/freedink-data/usr/share/games/dink/dink/Sound/*.mid "$x"/freedink-data/usr/share/games/dink/dink/Sound/*.ogg; do
  link mixed-b/freedink "$f"
done
for f in "$x"/openttd-openmsx/usr/share/games/openttd/baseset/openmsx/*.mid; do link mixed-b/openmsx "$f"; done
for f in "$x"/extremetuxracer-data/usr/share/games/etr/music/*.ogg; do link mixed-b/extreme-tux-racer "$f"; done
for lib in soundtracks mixed-a mixed-b; do
  echo "$lib: $(for d in "$DIR/$lib"/*/; do printf '%s %s, ' "$(basename "$d")" "$(ls "$d" | wc -l)"; done)"
done
