# Sourced by the corpus scripts here: fetch a Debian package into the current folder and unpack
# it into ./x (replacing what was there), the .deb removed again.
get() { apt-get download "$1" >/dev/null 2>&1 || { apt-get update -qq; apt-get download "$1" >/dev/null; }; }
unpack() { get "$1"; rm -rf x; mkdir x; dpkg -x "$1"_*.deb x; rm -f "$1"_*.deb; }
