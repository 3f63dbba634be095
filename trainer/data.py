"""Training data: a mel cache on disk, an in-memory segment store, triplet sampling, augmentation.

Why cache mels and not raw audio: a log-Mel frame (64 bands, float16) is 128 bytes for 23 ms
of sound, raw 22.05 kHz float16 audio is 1 KiB; so the cache is 8x smaller, an hour of music
is ~20 MB and a whole corpus fits in RAM (or GPU memory), and epochs cost only the network.
The front end still runs on the GPU when there is one: while the cache is built, worker
processes decode and the main process turns the audio into mels on the training device
(on CPU-only machines the workers compute the mels themselves, in parallel).
Random crops at any frame offset (not a fixed grid) give many distinct triplets per decoded
second, and time-shift augmentation for free.

The cache's format (:mod:`musicsim.melcache`) lives in the core, because a scan fills it too:
training on a scanned library decodes only the tracks the scan did not cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from musicsim.audio.features import FrontEnd, LogMel
from musicsim.errors import Cancelled, MusicsimError
from musicsim.jobs import CancelToken, EtaClock, ProgressFn, report
from musicsim.melcache import (  # noqa: F401 - the cache format lives in the core (the scan writes it)
    CACHE_VERSION,
    CachedMel,
    DecodeSettings,
    MelStore,
    ScanCacheWriter,
    cache_key,
)
from trainer.related import RelatedPairs


def _decode_worker(path: str, fe_dict: dict, ds_dict: dict, compute_mel: bool) -> dict:
    """Worker process: decode one file (and compute its mels when asked). Never raises."""
    t0 = time.perf_counter()
    try:
        from musicsim.audio.decode import decode_for_analysis

        fe = FrontEnd.from_dict(fe_dict)
        ds = DecodeSettings(**ds_dict)
        dec = decode_for_analysis(path, sr=fe.sr, windows=ds.windows, window_seconds=ds.window_seconds,
                                  max_seconds=ds.max_seconds, soundfont=ds.soundfont)
        out = {"ok": True, "starts": list(map(float, dec.starts)), "duration": float(dec.duration)}
        if compute_mel:
            torch.set_num_threads(1)
            out["mels"] = mels_of_chunks(dec.chunks, LogMel(fe))
        else:
            out["chunks"] = dec.chunks
        out["t"] = time.perf_counter() - t0
        return out
    except MusicsimError as e:
        return {"ok": False, "reason": e.reason}
    except Exception as e:  # one bad file must not stop the cache build
        return {"ok": False, "reason": f"unexpected {type(e).__name__}: {' '.join(str(e).split())[:200]}"}


@torch.inference_mode()
def mels_of_chunks(chunks: list[np.ndarray], logmel: LogMel) -> list[np.ndarray]:
    dev = logmel.mel_basis.device
    out = []
    for c in chunks:
        wave = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)).to(dev)
        out.append(logmel(wave).to(torch.float16).cpu().numpy())
    return out


def _context():
    # Never fork a process that runs torch threads (or a GUI): forkserver on Linux, else spawn.
    return mp.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")


class MelCache(MelStore):
    """Decoded-once log-Mel frames of tracks, on disk (the store the scan also fills), with the
    decoding of the tracks it lacks."""

    left_out = 0  # tracks the last build did not decode: the frame budget was full

    def build(self, paths: list[str], *, device: torch.device | str = "cpu", workers: int = 0,
              progress: ProgressFn | None = None, cancel: CancelToken | None = None,
              mmap: bool = True, max_frames: int | None = None,
              writer: ScanCacheWriter | None = None) -> tuple[dict[str, CachedMel], list[tuple[str, str]]]:
        """Return cached mels for ``paths`` (decoding those not cached yet) and (path, reason) failures.

        With ``max_frames``, tracks not cached yet are decoded, in the order given, only while
        the frames found stay under it: a library longer than the training budget is sampled
        rather than decoded (and written to the cache) whole. The tracks left out are neither
        found nor failed; :attr:`left_out` counts them.

        With ``writer``, decoded tracks are stored only within its disk budget (as the scan
        stores them); beyond it their frames are returned in memory."""
        device = torch.device(device)
        found: dict[str, CachedMel] = {}
        todo = []
        for p in paths:
            c = self.get(p, mmap=mmap)
            if c is None:
                todo.append(p)
            else:
                found[p] = c
        failures: list[tuple[str, str]] = []
        total, done = len(paths), len(found)
        have = sum(sum(c.chunk_frames) for c in found.values())
        self.left_out = 0
        if max_frames is not None and have >= max_frames:
            self.left_out, todo = len(todo), []
        report(progress, "cache", done, total, f"{len(todo)} tracks to decode", info={"to_decode": len(todo)})
        if not todo:
            return found, failures

        def full() -> bool:
            return max_frames is not None and have >= max_frames
        gpu_mel = device.type != "cpu"
        logmel = LogMel(self.fe).to(device) if gpu_mel else None
        clock = EtaClock(len(todo))
        fe_d, ds_d = self.fe.to_dict(), asdict(self.decode)

        def handle(path: str, res: dict) -> None:
            nonlocal done, have
            if res["ok"]:
                mels = res["mels"] if "mels" in res else mels_of_chunks(res["chunks"], logmel)
                if writer is None:
                    c = self.put(path, mels, res["starts"], res["duration"])
                    c = c and (self.get(path, mmap=mmap) or c)
                else:
                    c = CachedMel.of(mels, res["starts"], res["duration"])
                    with contextlib.suppress(OSError):  # a file gone since it was decoded: not stored
                        st = os.stat(path)
                        writer.put(path, st.st_size, st.st_mtime, mels, res["starts"], res["duration"])
                if c is not None:
                    found[path] = c
                    have += sum(c.chunk_frames)
            else:
                failures.append((path, res["reason"]))
            done += 1
            report(progress, "cache", done, total, os.path.basename(path), clock.eta(done - (total - len(todo))))

        if workers <= 1 or len(todo) == 1:
            prev = torch.get_num_threads()
            for i, p in enumerate(todo):
                if cancel is not None:
                    cancel.check()
                if full():
                    self.left_out = len(todo) - i
                    break
                handle(p, _decode_worker(p, fe_d, ds_d, not gpu_mel))
            torch.set_num_threads(prev)
            self._report_left_out(progress, total)
            return found, failures
        queue = list(reversed(todo))
        solo: list[str] = []  # files in flight when a worker died: retried one at a time
        n = min(workers, len(todo))
        pool = ProcessPoolExecutor(max_workers=n, mp_context=_context())
        inflight: dict = {}
        try:
            while queue or inflight or solo:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("cancelled while building the mel cache")
                if solo:
                    if not inflight:
                        p = solo.pop()
                        inflight[pool.submit(_decode_worker, p, fe_d, ds_d, not gpu_mel)] = (p, True)
                else:
                    if queue and full():
                        self.left_out, queue = len(queue), []
                    while queue and len(inflight) < 2 * n:
                        p = queue.pop()
                        inflight[pool.submit(_decode_worker, p, fe_d, ds_d, not gpu_mel)] = (p, False)
                ready, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
                broken = False
                for fut in ready:
                    p, alone = inflight.pop(fut)
                    try:
                        res = fut.result()
                    except BrokenProcessPool:
                        if alone:
                            handle(p, {"ok": False, "reason": "the decoder crashed on this file"})
                        else:
                            solo.append(p)
                        broken = True
                        continue
                    handle(p, res)
                if broken:
                    solo.extend(p for p, _ in inflight.values())
                    inflight.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = ProcessPoolExecutor(max_workers=n, mp_context=_context())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self._report_left_out(progress, total)
        return found, failures

    def _report_left_out(self, progress: ProgressFn | None, total: int) -> None:
        if self.left_out:
            report(progress, "cache", total, total, f"{self.left_out} tracks left out: the training budget is full")


# --- the in-memory store ---------------------------------------------------------------------


class SegmentStore:
    """Mels of many tracks as one ``[n_mels, total_frames]`` float16 tensor.

    The unit of sampling is a *piece*: one contiguous decoded chunk (a whole track unless
    the track was decoded in windows). Each piece knows its track; a crop never crosses pieces.
    """

    def __init__(self, mel: torch.Tensor, offsets: np.ndarray, lengths: np.ndarray, piece_track: np.ndarray,
                 track_names: list[str]) -> None:
        self.mel = mel
        self.offsets = np.asarray(offsets, np.int64)
        self.lengths = np.asarray(lengths, np.int64)
        self.piece_track = np.asarray(piece_track, np.int64)
        self.track_names = list(track_names)
        self._offsets_t = torch.from_numpy(self.offsets)
        self._lengths_t = torch.from_numpy(self.lengths)

    @classmethod
    def from_cached(cls, tracks: list[tuple[str, CachedMel]], *, max_frames: int | None = None) -> SegmentStore:
        """Concatenate cached tracks; with ``max_frames``, long tracks are trimmed (centred
        excerpts) so the whole store fits the memory budget."""
        keep = [c.chunk_frames for _, c in tracks]
        total = sum(sum(k) for k in keep)
        if max_frames is not None and total > max_frames:
            # Largest per-piece cap that fits the budget (water-filling).
            lens = np.sort(np.array([n for k in keep for n in k], np.int64))
            cap, budget, left = int(lens[-1]), max_frames, len(lens)
            for n in lens:
                if n * left > budget:
                    cap = budget // left
                    break
                budget -= n
                left -= 1
            cap = max(cap, 1)
        else:
            cap = None
        parts, offsets, lengths, ptrack = [], [], [], []
        pos = 0
        for ti, (_, c) in enumerate(tracks):
            start = 0
            for n in c.chunk_frames:
                a, b = start, start + n
                if cap is not None and n > cap:
                    a = start + (n - cap) // 2
                    b = a + cap
                parts.append(np.asarray(c.mel[:, a:b], dtype=np.float16))
                offsets.append(pos)
                lengths.append(b - a)
                ptrack.append(ti)
                pos += b - a
                start += n
        mel = torch.from_numpy(np.concatenate(parts, axis=1)) if parts else torch.zeros(0, 0, dtype=torch.float16)
        return cls(mel, np.array(offsets), np.array(lengths), np.array(ptrack), [p for p, _ in tracks])

    @property
    def n_tracks(self) -> int:
        return len(self.track_names)

    @property
    def total_frames(self) -> int:
        return int(self.lengths.sum())

    def to(self, device: torch.device) -> SegmentStore:
        if device.type == "cuda":
            mel = self.mel.to(device, non_blocking=True)
        else:
            mel = self.mel
        out = SegmentStore(mel, self.offsets, self.lengths, self.piece_track, self.track_names)
        return out

    def crops(self, piece: np.ndarray, start: np.ndarray, frames: int, device: torch.device | None = None) -> torch.Tensor:
        """``[B, 1, n_mels, frames]`` float32 crops; pieces shorter than ``frames`` wrap around."""
        dev = self.mel.device
        piece_t = torch.as_tensor(piece, dtype=torch.long)
        start_t = torch.as_tensor(start, dtype=torch.long)
        rel = (start_t.unsqueeze(1) + torch.arange(frames).unsqueeze(0)) % self._lengths_t[piece_t].unsqueeze(1)
        idx = (self._offsets_t[piece_t].unsqueeze(1) + rel).to(dev)
        out = self.mel[:, idx.reshape(-1)].reshape(self.mel.shape[0], len(piece), frames)
        out = out.permute(1, 0, 2).unsqueeze(1).float()
        return out if device is None else out.to(device, non_blocking=True)


# --- sampling --------------------------------------------------------------------------------


def rng_for(*keys: int) -> np.random.Generator:
    """A counter-based generator: the same keys give the same stream (exact resume needs no
    saved generator state, only the keys: seed, epoch, step, rank)."""
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


@dataclass
class Batch:
    anchor: tuple[np.ndarray, np.ndarray]  # (piece, start)
    neighbour: tuple[np.ndarray, np.ndarray]
    distant: tuple[np.ndarray, np.ndarray]
    track_a: np.ndarray
    track_d: np.ndarray


class TripletSampler:
    """Tile2Vec triplets from temporal proximity.

    anchor: a random crop; neighbour: a crop of the same piece (same track) whose start lies
    within ``window`` frames of the anchor's start, and differs from it; distant: a crop of a
    piece of a different track, chosen in proportion to length, and not of a track ``related``
    to the anchor's (:mod:`trainer.related`) while an unrelated one exists.
    """

    def __init__(self, lengths: np.ndarray, piece_track: np.ndarray, seg_frames: int, window_frames: int,
                 pieces: np.ndarray | None = None, related: RelatedPairs | None = None) -> None:
        self.related = related
        self.lengths = np.asarray(lengths, np.int64)
        self.piece_track = np.asarray(piece_track, np.int64)
        self.F = int(seg_frames)
        self.W = max(1, int(window_frames))
        self.pieces = np.arange(len(self.lengths)) if pieces is None else np.asarray(pieces, np.int64)
        if len(np.unique(self.piece_track[self.pieces])) < 1:
            raise ValueError("no tracks to sample from")
        lens = self.lengths[self.pieces]
        self._cum = np.cumsum(lens)
        # Segments per piece on the non-overlapping grid: an epoch visits each once.
        self.grid = np.maximum(1, lens // self.F)

    @property
    def n_segments(self) -> int:
        return int(self.grid.sum())

    def max_start(self, piece: np.ndarray) -> np.ndarray:
        return np.maximum(self.lengths[piece] - self.F, 0)

    def epoch_anchors(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Every grid segment once, shuffled, each jittered by up to half a segment."""
        piece = np.repeat(self.pieces, self.grid)
        first = np.repeat(np.cumsum(self.grid) - self.grid, self.grid)
        k = np.arange(len(piece)) - first
        start = k * self.F + rng.integers(-self.F // 2, self.F // 2 + 1, size=len(piece))
        start = np.clip(start, 0, self.max_start(piece))
        order = rng.permutation(len(piece))
        return piece[order], start[order]

    def neighbours(self, rng: np.random.Generator, piece: np.ndarray, start: np.ndarray) -> np.ndarray:
        hi_all = self.max_start(piece)
        lo = np.maximum(start - self.W, 0)
        hi = np.minimum(start + self.W, hi_all)
        span = hi - lo  # candidates lo..hi except start itself: span values
        off = rng.integers(0, np.maximum(span, 1))
        n = lo + off
        n = np.where(n >= start, n + 1, n)  # skip the anchor's own start
        return np.where(span > 0, np.minimum(n, hi), start)

    def distant(self, rng: np.random.Generator, track: np.ndarray, pool: TripletSampler | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Crops from pieces (of ``pool``, default this sampler) of a track other than ``track``."""
        src = pool or self
        piece = np.empty(len(track), np.int64)
        todo = np.arange(len(track))
        for _ in range(64):
            pos = rng.integers(0, src._cum[-1], size=len(todo))
            cand = src.pieces[np.searchsorted(src._cum, pos, side="right")]
            ok = src.piece_track[cand] != track[todo]
            if self.related is not None:
                ok &= ~self.related.contains(track[todo], src.piece_track[cand])
            piece[todo[ok]] = cand[ok]
            todo = todo[~ok]
            if not len(todo):
                break
        for i in todo:  # a track that dominates the pool: pick among the others explicitly
            others = src.pieces[src.piece_track[src.pieces] != track[i]]
            if self.related is not None and len(others):
                unrelated = others[~self.related.contains(track[i], src.piece_track[others])]
                others = unrelated if len(unrelated) else others  # everything related: any other track
            if not len(others):
                raise ValueError("distant segments need at least two tracks")
            piece[i] = others[rng.integers(0, len(others))]
        start = (rng.random(len(piece)) * (src.max_start(piece) + 1)).astype(np.int64)
        return piece, start

    def batch(self, rng: np.random.Generator, piece: np.ndarray, start: np.ndarray,
              pool: TripletSampler | None = None) -> Batch:
        nb = self.neighbours(rng, piece, start)
        track = self.piece_track[piece]
        dp, ds = self.distant(rng, track, pool)
        return Batch((piece, start), (piece, nb), (dp, ds), track, self.piece_track[dp])


# --- augmentation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Augment:
    """Label-preserving changes of log-Mel dB crops ``[B, 1, M, T]``: gain, EQ, masking.

    gain: a level change (a dB offset); eq: a smooth random curve over the mel bands (tilt
    plus one broad bump or dip) of up to ``eq_db``; masks: SpecAugment-style bands of mel
    bins / frames replaced by the crop's mean level. Time shift comes from random cropping.
    """

    gain_db: float = 6.0
    eq_db: float = 6.0
    freq_mask: int = 8
    time_mask: int = 16
    p_mask: float = 0.5
    p_mix: float = 0.0  # chance of mixing in another crop of the batch (as background)
    mix_db: tuple[float, float] = (-20.0, -8.0)  # its level relative to the crop
    pitch_bins: int = 0  # shift along the mel axis by up to this many bands (~ a pitch shift)

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        B, _, M, T = x.shape
        dev = x.device
        if self.p_mix > 0:
            # Power-domain mix with a random other crop, at a low level: the music stays the same.
            other = torch.from_numpy(rng.permutation(B)).to(dev)
            level = rng.uniform(*self.mix_db, size=B) * (rng.random(B) < self.p_mix) + \
                -200.0 * (rng.random(B) >= self.p_mix)
            lv = torch.from_numpy(level.astype(np.float32)).to(dev).view(B, 1, 1, 1)
            x = 10.0 * torch.log10(torch.pow(10.0, x / 10.0) + torch.pow(10.0, (x[other] + lv) / 10.0))
        if self.pitch_bins > 0:
            shift = rng.integers(-self.pitch_bins, self.pitch_bins + 1, size=B)
            src = (torch.arange(M).view(1, M) - torch.from_numpy(shift).view(B, 1)).clamp(0, M - 1)
            x = torch.gather(x, 2, src.to(dev).view(B, 1, M, 1).expand(B, 1, M, T))
        bins = np.linspace(-1.0, 1.0, M)
        gain = rng.uniform(-self.gain_db, self.gain_db, size=(B, 1))
        tilt = rng.uniform(-self.eq_db, self.eq_db, size=(B, 1)) * 0.5 * bins[None, :]
        centre = rng.uniform(-1, 1, size=(B, 1))
        bump = rng.uniform(-self.eq_db, self.eq_db, size=(B, 1)) * 0.5 * np.exp(-0.5 * ((bins[None, :] - centre) / 0.25) ** 2)
        curve = torch.from_numpy((gain + tilt + bump).astype(np.float32)).to(dev)
        x = x + curve.view(B, 1, M, 1)
        if self.p_mask > 0 and (self.freq_mask > 0 or self.time_mask > 0):
            mean = x.mean(dim=(2, 3), keepdim=True)
            mask = torch.zeros(B, 1, M, T, dtype=torch.bool, device=dev)
            use = rng.random(B) < self.p_mask
            fw = rng.integers(0, self.freq_mask + 1, size=B) * use
            f0 = rng.integers(0, M, size=B)
            tw = rng.integers(0, self.time_mask + 1, size=B) * use
            t0 = rng.integers(0, T, size=B)
            mi = torch.arange(M, device=dev).view(1, 1, M, 1)
            ti = torch.arange(T, device=dev).view(1, 1, 1, T)

            def col(v):
                return torch.from_numpy(np.asarray(v, np.int64)).to(dev).view(B, 1, 1, 1)

            mask |= (mi >= col(f0)) & (mi < col(f0 + fw))
            mask |= (ti >= col(t0)) & (ti < col(t0 + tw))
            x = torch.where(mask, mean, x)
        return x


def _fingerprint(c: CachedMel) -> tuple[int, np.ndarray, np.ndarray]:
    """Length in frames, log of the mean power per mel band, and a coarse loudness envelope."""
    m = np.asarray(c.mel, np.float32)
    pw = np.power(10.0, m / 10.0)
    spec = 10.0 * np.log10(pw.mean(axis=1) + 1e-10)
    env = 10.0 * np.log10(pw.sum(axis=0) + 1e-10)
    k = len(env) // 8 * 8
    return m.shape[1], spec, (env[:k].reshape(-1, 8).mean(axis=1) if k else env)


def _spec_dist(a: np.ndarray, b: np.ndarray, floor_db: float = 50.0) -> float:
    filled = (a > a.max() - floor_db) & (b > b.max() - floor_db)
    return float(np.sqrt(np.mean((a[filled] - b[filled]) ** 2))) if filled.any() else float("inf")


def _env_match(a: np.ndarray, b: np.ndarray, max_lag: int = 3) -> float:
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = a[max(lag, 0) :], b[max(-lag, 0) :]
        n = min(len(x), len(y))
        if n >= 8 and x[:n].std() > 1e-6 and y[:n].std() > 1e-6:
            best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def duplicate_groups(cached: list[CachedMel], *, spec_db: float = 2.0, min_r: float = 0.9) -> np.ndarray:
    """Group id per track; copies of the same recording (another format or bit rate, a second
    file of one song) share a group, so they are never used as each other's "distant" segment:
    training the network to tell a song from its own MP3 teaches it codec artefacts.

    Copies: lengths within 1 % (or 8 frames), mean spectra within ``spec_db`` dB (RMS over the
    mel bands both tracks fill, i.e. within 50 dB of their loudest band, so a low-bit-rate
    copy's low-pass does not hide it; copies of the dev library's real tracks differ by
    <= 1.2 dB, different songs by >= 5 dB), and, for tracks longer than ~6 s, loudness
    envelopes correlated above ``min_r``.
    """
    fps = [_fingerprint(c) for c in cached]
    parent = list(range(len(fps)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(fps)), key=lambda i: fps[i][0])
    for a_pos, i in enumerate(order):
        ni, si, ei = fps[i]
        for j in order[a_pos + 1 :]:
            nj, sj, ej = fps[j]
            if nj - ni > max(8, 0.01 * nj):
                break
            if _spec_dist(si, sj) > spec_db:
                continue
            if min(len(ei), len(ej)) >= 32 and _env_match(ei, ej) < min_r:
                continue
            parent[root(j)] = root(i)
    roots = [root(i) for i in range(len(fps))]
    _, ids = np.unique(roots, return_inverse=True)
    return ids.astype(np.int64)


def split_tracks(paths: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic split by track: the same files give the same validation set on every run
    (keyed by folder and file name, so moving a library keeps its split)."""

    order = sorted(paths, key=lambda p: hashlib.sha256(f"{seed}:{'/'.join(Path(os.path.abspath(p)).parts[-2:])}".encode()).hexdigest() + p)
    if len(order) < 4 or val_fraction <= 0:
        return sorted(paths), []
    n_val = min(max(2, int(round(len(order) * val_fraction))), len(order) - 2)
    return sorted(order[n_val:]), sorted(order[:n_val])
