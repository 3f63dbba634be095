#!/usr/bin/env bash
# Fetch the demo library: real, freely licensed music from Debian's archive (the game
# soundtracks of Extreme Tux Racer, Frozen Bubble, X-Moto and LinCity-NG as OGG Vorbis,
# OpenTTD's openMSX set as MIDI), with tagged MP3 copies of part of it. Needs apt-get
# download (no root) and ffmpeg. Never committed to the project.
#   fetch_demo_library.sh DIR
set -euo pipefail
DIR=${1:?usage: fetch_demo_library.sh DIR}
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
[ -f "$DIR/.complete" ] && { echo "demo library: $DIR (already fetched)"; exit 0; }
work="$DIR/.debs"; mkdir -p "$work"; cd "$work"
for p in extremetuxracer-data frozen-bubble-data xmoto-data lincity-ng-data openttd-openmsx; do
  ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 || {
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO apt-get update -qq; apt-get download "$p" >/dev/null; }
done
for f in *.deb; do d="$work/x/${f%%_*}"; [ -d "$d" ] || { mkdir -p "$d"; dpkg -x "$f" "$d"; }; done
take() { mkdir -p "$DIR/$2"; for f in $1; do [ -f "$f" ] && cp -n "$f" "$DIR/$2/"; done; }
take "$work/x/extremetuxracer-data/usr/share/games/etr/music/*.ogg" ogg/extreme-tux-racer
take "$work/x/frozen-bubble-data/usr/share/games/frozen-bubble/snd/*.ogg" ogg/frozen-bubble
take "$work/x/xmoto-data/usr/share/games/xmoto/Textures/Musics/*.ogg" ogg/xmoto
take "$work/x/lincity-ng-data/usr/share/games/lincity-ng/music/default/*.ogg" ogg/lincity-ng
take "$work/x/openttd-openmsx/usr/share/games/openttd/baseset/openmsx/*.mid" midi/openmsx
mkdir -p "$DIR/mp3"
# Vorbis comments are the audio stream's metadata to ffmpeg, so they are mapped from there
# (-map_metadata 0 took the container's, which is empty: the MP3s came out untagged).
for f in "$DIR"/ogg/*/*.ogg; do
  out="$DIR/mp3/$(basename "$(dirname "$f")")-$(basename "${f%.ogg}").mp3"
  [ -f "$out" ] || ffmpeg -nostdin -loglevel error -i "$f" -map_metadata 0:s:a:0 -id3v2_version 3 -codec:a libmp3lame -q:a 4 "$out"
done
rm -rf "$work"
touch "$DIR/.complete"
echo "demo library: $DIR ($(find "$DIR" -type f ! -name .complete | wc -l) files)"
