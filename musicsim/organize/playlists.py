"""Seeded playlists with variety constraints, and M3U8 / XSPF reading and writing."""

from __future__ import annotations

import os
import pyexpat
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path, PureWindowsPath
from urllib.parse import unquote, urlsplit

import numpy as np

from musicsim.errors import MusicsimError
from musicsim.fsutil import atomic_write_bytes
from musicsim.organize import TrackMeta, as_matrix, row_of
from musicsim.organize.order import smooth_order
from musicsim.organize.similar import Mode, seed_distances

_FIRST_CHUNK = 512  # candidates examined before falling back to a full sort
_XSPF_NS = "http://xspf.org/ns/0/"
_XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_FORBIDDEN = ("<!DOCTYPE", "<!ENTITY")


def _key(text: str | None) -> str | None:
    """Case- and space-insensitive comparison key; empty tags count as unknown."""
    if text is None:
        return None
    folded = " ".join(text.split()).casefold()
    return folded or None


def _ranked_rows(dist: np.ndarray) -> Iterator[int]:
    """Yield row positions by ascending distance, skipping rows set to +inf.

    The first chunk comes from argpartition so a typical playlist never pays for a
    full sort of the library; the rest is sorted only if constraints exhaust it.
    """
    finite = int(np.isfinite(dist).sum())
    k = min(_FIRST_CHUNK, finite)
    head = np.argpartition(dist, k - 1)[:k] if 0 < k < dist.size else np.arange(dist.size)
    head = head[np.argsort(dist[head], kind="stable")]
    yield from (int(r) for r in head if np.isfinite(dist[r]))
    if k < finite:
        rest = np.argsort(dist, kind="stable")[k:finite]
        yield from (int(r) for r in rest)


class _Constraints:
    """Remembers what is in the playlist and answers "may this row come next?"."""

    def __init__(
        self,
        X: np.ndarray,
        ids: np.ndarray,
        meta: dict[int, TrackMeta],
        *,
        capacity: int,
        no_same_artist: int = 0,
        no_same_album: bool = False,
        dup_threshold: float = 0.02,
    ) -> None:
        self.X, self.ids, self.meta = X, ids, meta
        self.no_same_artist, self.no_same_album = no_same_artist, no_same_album
        self.max_sim = 1.0 - dup_threshold
        self.kept = np.empty((capacity, X.shape[1]), dtype=np.float32)  # seed + chosen vectors
        self.count = 0
        self.paths: set[str] = set()
        self.albums: set[str] = set()
        self.artists: list[str | None] = []

    def _info(self, row: int) -> TrackMeta | None:
        return self.meta.get(int(self.ids[row]))

    def add(self, row: int, *, in_playlist: bool = True) -> None:
        info = self._info(row)
        self.kept[self.count] = self.X[row]
        self.count += 1
        if info is not None:
            self.paths.add(os.path.normcase(info.path))
            if (album := _key(info.album)) is not None:
                self.albums.add(album)
        if in_playlist:  # seeds are not playlist places, so they never block an artist
            self.artists.append(_key(info.artist) if info else None)

    def allows(self, row: int) -> bool:
        info = self._info(row)
        if info is not None:
            if os.path.normcase(info.path) in self.paths:
                return False
            artist = _key(info.artist)
            if artist is not None and self.no_same_artist and artist in self.artists[-self.no_same_artist :]:
                return False
            if self.no_same_album and _key(info.album) in self.albums:
                return False
        sims = self.kept[: self.count] @ self.X[row]
        return not bool((sims > self.max_sim).any())


def make_playlist(
    X: np.ndarray,
    ids: np.ndarray,
    meta: dict[int, TrackMeta],
    seed_ids: object,
    *,
    n: int = 30,
    mode: Mode = "mean",
    no_same_artist: int = 0,
    no_same_album: bool = False,
    exclude: Iterable[int] = (),
    dup_threshold: float = 0.02,
    smooth: bool = False,
) -> list[int]:
    """Build a playlist of tracks that sound like the seeds.

    Candidates are taken greedily by distance to the seeds, skipping the seeds, the
    ``exclude`` ids, near-duplicates (cosine distance < ``dup_threshold`` to a seed or
    chosen track, or the same path), an artist already used in the last
    ``no_same_artist`` places (case-insensitive; unknown artists never clash) and, when
    ``no_same_album``, any album of a seed or chosen track.

    Returns
    -------
    list of int
        Up to ``n`` track ids (fewer when constraints leave fewer). With ``smooth`` the
        list is re-ordered for smooth transitions, still starting nearest the seeds.
    """
    if n < 0 or no_same_artist < 0 or dup_threshold < 0:
        raise MusicsimError("n, no_same_artist and dup_threshold must not be negative")
    X = as_matrix(X)
    ids = np.asarray(ids, dtype=np.int64)
    seed_rows = row_of(ids, seed_ids)
    dist = seed_distances(X, seed_rows, mode=mode).astype(np.float64)
    dist[seed_rows] = np.inf
    dist[np.isin(ids, np.fromiter((int(e) for e in exclude), dtype=np.int64))] = np.inf
    rules = _Constraints(
        X,
        ids,
        meta,
        capacity=n + seed_rows.size,
        no_same_artist=no_same_artist,
        no_same_album=no_same_album,
        dup_threshold=dup_threshold,
    )
    for row in seed_rows.tolist():
        rules.add(row, in_playlist=False)
    chosen: list[int] = []
    for row in _ranked_rows(dist) if n else ():
        if rules.allows(row):
            rules.add(row)
            chosen.append(row)
            if len(chosen) == n:
                break
    if smooth and len(chosen) > 2:
        order, _ = smooth_order(X[chosen], start=0)
        chosen = [chosen[i] for i in order]
    return [int(ids[r]) for r in chosen]


# ---------------------------------------------------------------- files on disk


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise MusicsimError(f"cannot write playlist: {exc.strerror or exc}", path=path) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MusicsimError(f"cannot read playlist: {exc.strerror or exc}", path=path) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _display(entry: TrackMeta) -> str:
    title = _one_line(entry.title or "") or Path(entry.path).stem
    artist = _one_line(entry.artist or "")
    return f"{artist} - {title}" if artist else title


def _m3u_location(entry: TrackMeta, relative_to: Path | None) -> str:
    target = os.path.abspath(entry.path)
    if any(ch in target for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        # A line break inside a file name would split the entry in two: a file:// URI
        # (percent-encoded, read back by read_m3u) keeps it on one line.
        return Path(target).as_uri()
    if relative_to is not None:
        try:
            target = os.path.relpath(target, os.path.abspath(relative_to))
        except ValueError:  # another drive on Windows: keep it absolute
            return target
        if target.startswith("#") or target[:1].isspace():  # a comment line / stripped on reading
            target = os.curdir + os.sep + target
    return target


def write_m3u8(
    path: str | Path,
    entries: list[TrackMeta],
    *,
    relative_to: Path | None = None,
    name: str | None = None,
) -> None:
    """Write an extended M3U playlist in UTF-8.

    Parameters
    ----------
    path : path
        Target file (normally ``*.m3u8``); replaced atomically.
    entries : list of TrackMeta
        Tracks in playlist order.
    relative_to : Path, optional
        Write paths relative to this folder; pass the playlist's own folder so the
        playlist keeps working when the library moves with it. Absolute otherwise.
    name : str, optional
        Playlist title, written as a ``#PLAYLIST:`` line.
    """
    lines = ["#EXTM3U"]
    if name:
        lines.append(f"#PLAYLIST:{_one_line(name)}")
    for entry in entries:
        secs = int(round(entry.duration)) if entry.duration is not None else -1
        lines.append(f"#EXTINF:{secs},{_display(entry)}")
        lines.append(_m3u_location(entry, relative_to))
    _atomic_write(Path(path), ("\n".join(lines) + "\n").encode("utf-8"))


def _file_uri_to_path(uri: str) -> Path | None:
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. "file://[bad" (an unclosed IPv6 host): not a usable location
        return None
    local = unquote(parts.path)
    if re.match(r"^/[A-Za-z]:", local):  # file:///C:/Music -> C:/Music
        local = local[1:]
    if parts.netloc and parts.netloc.lower() != "localhost":
        local = f"//{parts.netloc}{local}"  # UNC share
    return Path(local)


def _resolve_entry(line: str, folder: Path) -> Path | None:
    """Turn one playlist location into a path; None for non-file URLs."""
    if line.lower().startswith("file:"):
        return _file_uri_to_path(line)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", line):
        return None  # http:// streams and the like are not library tracks
    if os.sep == "/" and "\\" in line and "/" not in line:
        line = PureWindowsPath(line).as_posix()  # playlist written on Windows
    target = Path(line)
    return target if target.is_absolute() else Path(os.path.normpath(folder / target))


def read_m3u(path: str | Path) -> list[Path]:
    """Read the track paths of an M3U or M3U8 playlist (the tracks are not opened).

    UTF-8 is expected (a BOM is allowed); ``.m3u`` files that are not valid UTF-8 are
    read as Latin-1. Comment lines are skipped, relative paths are resolved against the
    playlist's folder and ``file://`` URIs are decoded.
    """
    path = Path(path)
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        if path.suffix.lower() == ".m3u8":
            raise MusicsimError("playlist is not valid UTF-8", path=path) from None
        text = raw.decode("latin-1")
    folder = path.absolute().parent
    lines = (line.strip() for line in text.splitlines())
    found = (_resolve_entry(line, folder) for line in lines if line and not line.startswith("#"))
    return [p for p in found if p is not None]


def _text(parent: ET.Element, tag: str, value: str | None) -> None:
    if value:
        ET.SubElement(parent, tag).text = _XML_BAD_CHARS.sub("", _one_line(value))


def write_xspf(path: str | Path, entries: list[TrackMeta], *, name: str | None = None) -> None:
    """Write an XSPF 1 playlist with percent-encoded ``file://`` locations."""
    root = ET.Element("playlist", {"version": "1", "xmlns": _XSPF_NS})
    _text(root, "title", name)
    tracks = ET.SubElement(root, "trackList")
    for entry in entries:
        track = ET.SubElement(tracks, "track")
        ET.SubElement(track, "location").text = Path(os.path.abspath(entry.path)).as_uri()
        _text(track, "title", entry.title)
        _text(track, "creator", entry.artist)
        _text(track, "album", entry.album)
        if entry.duration is not None and entry.duration >= 0:
            ET.SubElement(track, "duration").text = str(int(round(entry.duration * 1000)))
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    _atomic_write(Path(path), data + b"\n")


def read_xspf(path: str | Path) -> list[Path]:
    """Read the local track paths of an XSPF playlist (the tracks are not opened).

    Documents with a DTD or entity declarations are refused, which rules out entity
    expansion attacks without needing defusedxml.
    """
    path = Path(path)
    raw = _read_bytes(path)
    refused = MusicsimError("XSPF playlist with a DTD or entities is not accepted", path=path)
    for marker in _FORBIDDEN:
        if any(marker.encode(enc) in raw for enc in ("ascii", "utf-16-le", "utf-16-be")):
            raise refused
    try:
        _refuse_dtd(raw)  # whatever the encoding, expat itself reports a DTD
        root = ET.fromstring(raw)
    except _DtdFound:
        raise refused from None
    except (ET.ParseError, pyexpat.ExpatError, LookupError, ValueError) as exc:
        # LookupError: an unknown encoding declared; ValueError: bytes that do not decode
        reason = " ".join(str(exc).split())[:200]
        raise MusicsimError(f"not a valid XSPF playlist ({reason})", path=path) from None
    folder = path.absolute().parent
    found = []
    for track in root.iter():
        if track.tag not in (f"{{{_XSPF_NS}}}track", "track"):
            continue
        for loc in track:
            if loc.tag in (f"{{{_XSPF_NS}}}location", "location") and loc.text and loc.text.strip():
                target = _resolve_entry(_unquote_relative(loc.text.strip()), folder)
                if target is not None:
                    found.append(target)
                    break
    return found


class _DtdFound(Exception):
    pass


def _refuse_dtd(raw: bytes) -> None:
    """Parse with expat only to look for a DOCTYPE or entity declaration (raises _DtdFound)."""

    def found(*_args) -> None:
        raise _DtdFound

    parser = pyexpat.ParserCreate()
    parser.StartDoctypeDeclHandler = found
    parser.EntityDeclHandler = found
    parser.Parse(raw, True)


def _unquote_relative(location: str) -> str:
    """XSPF locations are URIs: a relative one is percent-encoded like any other."""
    return location if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location) else unquote(location)
