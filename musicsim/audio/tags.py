"""Read the descriptive tags of a music file, tolerating anything malformed.

Tags are a convenience (display, search, playlists), so a broken tag never fails a
scan: whatever could be read is returned and the rest falls back to ``None``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from musicsim.audio import decode, midi, sniff

_MAX_CHARS = 1000
_MAX_EXTRA = 50
# Keys tried in order; the lower-case names are mutagen's "easy" keys (ID3, MP4, Vorbis),
# the rest cover raw ID3 frames (WAV/AIFF), ASF (WMA) and raw MP4 atoms.
_KEYS = {
    "title": ("title", "TIT2", "Title", "\xa9nam"),
    "artist": ("artist", "TPE1", "Author", "\xa9ART"),
    "album": ("album", "TALB", "WM/AlbumTitle", "\xa9alb"),
    "albumartist": ("albumartist", "album artist", "album_artist", "TPE2", "WM/AlbumArtist", "aART"),
    "genre": ("genre", "TCON", "WM/Genre", "\xa9gen"),
    "year": ("date", "year", "originaldate", "TDRC", "TYER", "TDOR", "WM/Year", "\xa9day"),
    "tracknumber": ("tracknumber", "TRCK", "WM/TrackNumber", "trkn"),
}
_KNOWN = {k for keys in _KEYS.values() for k in keys}
_YEAR = re.compile(r"(?<!\d)([12]\d{3})")
_TRACK = re.compile(r"\s*(\d{1,4})")


_CONTROL = re.compile(r"[\x01-\x1f\x7f-\x9f]+")


def _clean(value: object) -> str | None:
    """One line of at most ``_MAX_CHARS``: NULs dropped, other control characters (newlines,
    escapes) become a space, so a tag can never break a one-line listing."""
    text = str(value)[: 4 * _MAX_CHARS].replace("\x00", "")
    text = _CONTROL.sub(" ", text).strip()[:_MAX_CHARS].strip()
    return text or None


def _strings(value: object) -> list[str]:
    """Flatten the many shapes mutagen returns (lists, ID3 frames, ASF attributes, MP4 tuples)."""
    if hasattr(value, "text") and isinstance(value.text, list):
        value = value.text
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items[:100]:
        if isinstance(item, tuple):  # MP4 trkn: (track, total)
            item = item[0] if item else None
        item = getattr(item, "value", item)
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        text = _clean(item) if item is not None else None
        if text and text not in out:
            out.append(text)
    return out


def _lookup(tags, keys: tuple[str, ...]) -> list[str]:
    for key in keys:
        try:
            value = tags.get(key)
        except Exception:  # unknown key or a frame mutagen cannot convert
            continue
        values = _strings(value) if value is not None else []
        if values:
            return values
    return []


def _parse_year(values: list[str]) -> int | None:
    for text in values:
        match = _YEAR.search(text)
        if match:
            return int(match.group(1))
    return None


def _parse_track(values: list[str]) -> int | None:
    for text in values:
        match = _TRACK.match(text)  # "3/12", "03", "3 of 12"
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


def _stem(path: str | os.PathLike) -> str | None:
    """The file name without extension, as a fallback title (cleaned like a tag)."""
    return _clean(Path(path).stem)


def _empty(path: str | os.PathLike) -> dict:
    return {
        "title": _stem(path),
        "artist": None,
        "album": None,
        "albumartist": None,
        "genre": None,
        "year": None,
        "tracknumber": None,
        "duration": None,
        "extra": {},
    }


def _read_midi(path: str | os.PathLike, result: dict) -> dict:
    try:
        info = midi.midi_info(path)
    except Exception:
        return result
    result["title"] = _clean(info["title"]) if info["title"] else result["title"]
    result["title"] = result["title"] or _stem(path)
    result["duration"] = info["duration"]
    result["extra"] = {"tempo": info["tempo"], "instruments": info["instruments"]}
    return result


def read_tags(path: str | os.PathLike, *, measure: bool = True) -> dict:
    """Read title, artist, album and other tags from an audio or MIDI file.

    Parameters
    ----------
    path : str or PathLike
        Music file; opened read-only. Never raises for malformed tags.
    measure : bool
        When the tags hold no length, ask the decoder for one (a scan, which decodes the file
        anyway and stores the decoded length, passes False).

    Returns
    -------
    dict
        Keys ``title``, ``artist``, ``album``, ``albumartist``, ``genre`` (str or None),
        ``year``, ``tracknumber`` (int or None), ``duration`` (seconds or None) and
        ``extra`` (dict: stream info and any other text tags). ``title`` falls back to the
        file name without extension.
    """
    import mutagen

    result = _empty(path)
    try:  # a FIFO or device named like music would block mutagen's open() forever
        sniff.read_head(path, 0)
    except Exception:
        return result
    if Path(path).suffix.lower() in sniff.MIDI_EXTENSIONS:
        return _read_midi(path, result)
    try:
        audio = mutagen.File(os.fspath(path), easy=True)
    except Exception:  # mutagen raises many types for broken headers and tags
        audio = None
    tags = getattr(audio, "tags", None) if audio is not None else None
    if tags is not None:
        for name, keys in _KEYS.items():
            values = _lookup(tags, keys)
            if name == "year":
                result["year"] = _parse_year(values)
            elif name == "tracknumber":
                result["tracknumber"] = _parse_track(values)
            elif values:
                result[name] = "; ".join(values)[:_MAX_CHARS]
        try:
            for key in list(tags.keys())[:200]:
                if len(result["extra"]) >= _MAX_EXTRA:
                    break
                wanted = isinstance(key, str) and key not in _KNOWN and "picture" not in key.lower()
                value = tags.get(key) if wanted else None
                # Only text-like values: pictures and binary frames are not tags to show.
                if isinstance(value, (str, list)) or isinstance(getattr(value, "text", None), list):
                    values, label = _strings(value), _clean(key)
                    if values and label:  # a key of only control characters names nothing
                        result["extra"][label[:100]] = "; ".join(values)[:_MAX_CHARS]
        except Exception:
            pass
    info = getattr(audio, "info", None)
    length = getattr(info, "length", None)
    if isinstance(length, (int, float)) and 0 < length < 1e7:
        result["duration"] = float(length)
    elif measure:
        try:  # mutagen could not say; libsndfile/ffprobe often can
            result["duration"] = decode.probe_duration(path)
        except Exception:
            pass
    for attr, key in (("sample_rate", "sample_rate"), ("channels", "channels"), ("bitrate", "bitrate")):
        value = getattr(info, attr, None)
        if isinstance(value, int) and value > 0:
            result["extra"][key] = value
    result["title"] = result["title"] or _stem(path)
    return result
