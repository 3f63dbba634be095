"""The log-Mel cache: each track's log-Mel frames, decoded once, on disk.

The scan fills it as a by-product (within ``Config.mel_cache_gb``), so training and
re-embedding a scanned library never decode its audio again; training and re-embedding fill
what is missing (:class:`musicsim.melcache.builder.MelCache`).

Layout (``cache_dir()/mels`` unless told otherwise): per track ``<key>.npy`` (float16
``[n_mels, frames]``, all decoded chunks concatenated; memory-mappable) and ``<key>.json``
(chunk lengths in frames, chunk start times, duration), where ``key`` hashes the absolute
path, size, mtime, the front-end parameters (all but the segment length: segments are cut
when an entry is read) and the decode settings. The JSON is written last, so an interrupted
write is never mistaken for an entry. A log-Mel frame (64 bands,
float16) is 128 bytes for 23 ms of sound: an hour of music is ~20 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from musicsim.audio.features import FrontEnd, segment_chunks
from musicsim.fsutil import atomic_write

CACHE_VERSION = 1
_DEFAULT_SEGMENT_FRAMES = FrontEnd().segment_frames
UNAVAILABLE_KEEP_DAYS = 90  # entries of files whose whole folder is gone (an unmounted drive?) are kept this long


@dataclass(frozen=True)
class DecodeSettings:
    """How tracks are decoded; the same fields as the library scan settings, so re-embedding
    from the cache gives the vectors a scan would give."""

    windows: int = 0
    window_seconds: float = 6.0
    max_seconds: float = 720.0
    soundfont: str | None = None
    first_pass: bool = False  # windows by track length (musicsim.audio.decode.first_pass_windows)

    @classmethod
    def from_config(cls, cfg) -> DecodeSettings:
        return cls(
            windows=int(cfg.analysis_windows),
            window_seconds=float(cfg.window_seconds),
            max_seconds=float(cfg.max_seconds),
            soundfont=cfg.soundfont or None,
            first_pass=cfg.analysis == "fast",
        )

    def key(self) -> dict:
        """What identifies these settings in a cache key (whole-track entries keep the key
        they had before the first pass existed)."""
        d = asdict(self)
        if not self.first_pass:
            del d["first_pass"]
        else:  # which windows the first pass takes is part of what an entry holds
            from musicsim.audio.decode import FIRST_PASS_MAX, FIRST_PASS_MIN, FIRST_PASS_SPACING

            d["first_pass"] = [FIRST_PASS_SPACING, FIRST_PASS_MIN, FIRST_PASS_MAX]
        return d


@dataclass
class CachedMel:
    """One track's log-Mel dB frames, as the embedding front end computes them."""

    mel: np.ndarray  # float16 [n_mels, frames], possibly a read-only memmap
    chunk_frames: list[int]
    starts: list[float]  # start of each chunk, seconds
    duration: float

    @classmethod
    def of(cls, mels: list[np.ndarray], starts: list[float], duration: float) -> CachedMel:
        """A track's decoded chunks' frames, joined in memory as an entry holds them."""
        return cls(
            np.ascontiguousarray(np.concatenate(mels, axis=1).astype(np.float16)),
            [int(m.shape[1]) for m in mels],
            [float(s) for s in starts],
            float(duration),
        )

    def chunks(self) -> Iterable[np.ndarray]:
        pos = 0
        for n in self.chunk_frames:
            yield self.mel[:, pos : pos + n]
            pos += n

    def segments(self, fe: FrontEnd) -> tuple[torch.Tensor, np.ndarray]:
        """``[N, 1, n_mels, segment_frames]`` float32 segments and their start times (s),
        cut exactly as :meth:`musicsim.model.embed.Embedder.features` cuts them."""
        mels = (torch.from_numpy(np.asarray(chunk, dtype=np.float32)) for chunk in self.chunks())
        return segment_chunks(mels, self.starts, fe)


def cache_key(path: str, size: int, mtime_ns: int, fe: FrontEnd, ds: DecodeSettings) -> str:
    # The frames do not depend on the segment length (segments are cut when read), so a model
    # with other segments shares the entries; the key holds the default length, as every
    # entry written before this did.
    frontend = dict(fe.to_dict(), segment_frames=_DEFAULT_SEGMENT_FRAMES)
    ident = {
        "v": CACHE_VERSION,
        "path": os.path.abspath(path),
        "size": int(size),
        "mtime_ns": int(mtime_ns),
        "frontend": frontend,
        "decode": ds.key(),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


class MelStore:
    """Log-Mel frames of tracks on disk, keyed by file identity, front end and decode settings."""

    def __init__(self, root: str | os.PathLike | None, fe: FrontEnd, decode: DecodeSettings | None = None) -> None:
        if root is None:
            from musicsim.paths import cache_dir

            root = cache_dir() / "mels"
        self.root = Path(root)
        self.fe = fe
        self.decode = decode or DecodeSettings()

    def _paths(self, path: str, stat: os.stat_result | None = None) -> tuple[Path, Path] | None:
        try:
            st = stat or os.stat(path)
        except OSError:
            return None
        key = cache_key(path, st.st_size, st.st_mtime_ns, self.fe, self.decode)
        d = self.root / key[:2]
        return d / f"{key}.npy", d / f"{key}.json"

    def get(self, path: str, *, mmap: bool = True) -> CachedMel | None:
        p = self._paths(path)
        if p is None or not p[1].exists():
            return None
        try:
            meta = json.loads(p[1].read_text())
            mel = np.load(p[0], mmap_mode="r" if mmap else None)
        except (OSError, ValueError):
            return None
        if mel.ndim != 2 or mel.shape[0] != self.fe.n_mels or mel.shape[1] != sum(meta["chunk_frames"]):
            return None
        return CachedMel(mel, list(meta["chunk_frames"]), list(meta["starts"]), float(meta["duration"]))

    def put(
        self,
        path: str,
        mels: list[np.ndarray],
        starts: list[float],
        duration: float,
        stat: os.stat_result | None = None,
    ) -> CachedMel | None:
        """Store a track's mels (``stat``: the file as it was when decoded; default: now)."""
        try:
            st = stat or os.stat(path)
        except OSError:
            return None
        p = self._paths(path, st)
        p[0].parent.mkdir(parents=True, exist_ok=True)
        c = CachedMel.of(mels, starts, duration)
        atomic_write(p[0], lambda f: np.save(f, c.mel), sync=False)
        meta = {
            "path": os.path.abspath(path),
            "size": int(st.st_size),
            "mtime_ns": int(st.st_mtime_ns),
            "chunk_frames": c.chunk_frames,
            "starts": c.starts,
            "duration": c.duration,
        }
        atomic_write(p[1], lambda f: f.write(json.dumps(meta).encode()), sync=False)
        return c

    def prune(self) -> tuple[int, int]:
        """Delete stale entries: those of files that are gone or changed since they were
        decoded (a re-tagged file gets a new entry; the old one would never be read again),
        and frames whose entry a cut-short write never completed. A file whose folder is gone
        as well counts as gone only after UNAVAILABLE_KEEP_DAYS (it may be on a drive that is
        not mounted now).
        Returns (entries removed, bytes freed). Entries of other front ends and decode settings
        of a file that is unchanged stay: another model may use them."""
        removed = freed = 0
        try:
            subdirs = [d for d in os.scandir(self.root) if d.is_dir(follow_symlinks=False)]
        except OSError:
            return 0, 0
        for d in subdirs:
            try:
                entries = list(os.scandir(d.path))
            except OSError:
                continue
            metas = [e for e in entries if e.name.endswith(".json")]
            names = {e.name for e in metas}
            for e in entries:  # frames whose entry was never completed (a write cut short an hour or more ago)
                if e.name.endswith(".npy") and e.name[: -len(".npy")] + ".json" not in names and _older_than(e, 3600):
                    freed += _remove(e.path)
                    removed += 1
            for e in metas:
                if self._stale(e):
                    # the JSON first: never a half entry
                    freed += _remove(e.path) + _remove(e.path[: -len(".json")] + ".npy")
                    removed += 1
        return removed, freed

    @staticmethod
    def _stale(entry: os.DirEntry) -> bool:
        try:
            meta = json.loads(Path(entry.path).read_text())
            st = os.stat(meta["path"])
        except FileNotFoundError:
            # Gone when its folder is still there. A folder that is gone too may be a drive or
            # share that is not mounted now (the scan leaves such tracks alone as well): its
            # frames stay until they are UNAVAILABLE_KEEP_DAYS old, since decoding them again
            # costs as long as the first analysis.
            return os.path.isdir(os.path.dirname(meta["path"])) or _older_than(entry, UNAVAILABLE_KEEP_DAYS * 86400)
        except (OSError, ValueError, KeyError, TypeError):
            return False  # unreadable now: leave it to a later prune
        if "mtime_ns" in meta:
            return st.st_size != meta.get("size") or st.st_mtime_ns != meta["mtime_ns"]
        # an entry from before identities were recorded: stale if the file changed after it was written
        return st.st_mtime > entry.stat().st_mtime

    def usage_bytes(self) -> int:
        """Bytes the store holds on disk (every front end and decode setting)."""
        total = 0
        try:
            subdirs = list(os.scandir(self.root))
        except OSError:
            return 0
        for d in subdirs:
            if not d.is_dir(follow_symlinks=False):
                continue
            try:
                total += sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(d.path) if e.is_file())
            except OSError:
                continue
        return total


def _remove(path: str) -> int:
    """Delete a file; the bytes freed (0 if it could not be)."""
    try:
        size = os.stat(path).st_size
        os.remove(path)
        return size
    except OSError:
        return 0


def _older_than(entry: os.DirEntry, seconds: float) -> bool:
    try:
        return time.time() - entry.stat().st_mtime > seconds
    except OSError:
        return False


class ScanCacheWriter:
    """What the scan adds to the store: each analysed track's mels, within a disk budget
    (``Config.mel_cache_gb``; 0 turns it off). A file that changed since it was decoded, a
    full budget or a failing disk only means the trainer will decode that track itself."""

    def __init__(self, cfg, fe: FrontEnd, root: str | os.PathLike | None = None) -> None:
        self.budget = int(float(cfg.mel_cache_gb) * 2**30)
        self.store = MelStore(root, fe, DecodeSettings.from_config(cfg)) if self.budget > 0 else None
        self.used: int | None = None
        self.written = 0
        self.stopped = ""  # why writing stopped (budget reached, disk error), for the log
        self.pruned = False  # stale entries were removed this scan (at the first full budget)
        self.removed = 0

    @property
    def active(self) -> bool:
        """Whether the scan should keep mels for :meth:`put` at all."""
        return self.store is not None and not self.stopped

    def put(
        self, path: str, size: int, mtime: float, mels: list[np.ndarray], starts: list[float], duration: float
    ) -> bool:
        if not self.active:
            return False
        if self.used is None:
            self.used = self.store.usage_bytes()
        need = sum(int(m.shape[0]) * int(m.shape[1]) * 2 for m in mels) + 512
        if self.used + need > self.budget and not self.pruned:
            self.pruned = True  # once per scan: make room by dropping entries no file matches any more
            self.removed, freed = self.store.prune()
            self.used -= freed
        if self.used + need > self.budget:
            self.stopped = f"the mel cache reached its {self.budget / 2**30:.1f} GB budget"
            return False
        try:
            st = os.stat(path)
            if st.st_size != size or st.st_mtime != mtime:
                return False  # changed since it was decoded: its frames would be keyed wrongly
            if self.store.put(path, mels, starts, duration, stat=st) is None:
                return False
        except OSError as e:
            self.stopped = f"the mel cache could not be written ({e.strerror or e})"
            return False
        self.used += need
        self.written += 1
        return True
