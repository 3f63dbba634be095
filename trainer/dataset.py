"""The data of a run: its tracks split into training and validation, their frames in memory
(from the mel cache, decoding what it lacks), copies of one recording, related tracks, and the
triplet samplers over them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.melcache import CachedMel, DecodeSettings, MelCache
from musicsim.model.checkpoint import LoadedModel
from trainer.duplicates import duplicate_groups
from trainer.options import TrainOptions
from trainer.related import RelatedPairs, nearest_pairs, related_limit
from trainer.sampling import TripletSampler, split_tracks
from trainer.segments import SegmentStore
from trainer.setup import Start
from trainer.tracks import TrainTrack, stored_vectors

log = logging.getLogger("trainer")
DECODE_OVERFILL = 2  # tracks are decoded for training until their frames are this many times the store


@dataclass
class RunData:
    """The tracks of a run, their frames in memory and the triplet samplers over them."""

    train_paths: list[str]
    val_paths: list[str]
    failures: list  # (path, reason) of tracks that could not be decoded
    store: SegmentStore
    n_dup: int  # tracks that are copies of another track
    related: RelatedPairs | None
    sampler: TripletSampler  # training anchors
    val_sampler: TripletSampler | None  # validation anchors
    val_pool: TripletSampler | None  # where validation draws distant segments
    workers: int  # decoding processes


@dataclass
class Context:
    """Where a run executes and whom it tells: the device, this process among ``world``, the
    progress callback and cancel token."""

    device: torch.device
    rank: int  # this process (0: the one that decodes, reports and writes)
    world: int  # processes (DDP)
    progress: ProgressFn | None
    cancel: CancelToken | None

    @property
    def main(self) -> bool:
        return self.rank == 0


def collect_paths(opts: TrainOptions, tracks: list[TrainTrack]) -> list[str]:
    """The given tracks, then the files below ``opts.folders``, each once."""
    from musicsim.scan.walker import walk

    paths = [t.path for t in tracks]
    if opts.folders:
        paths += [e.path for e in walk(opts.folders)]
    return list(dict.fromkeys(paths))


def _split(opts: TrainOptions, ckpt: dict | None, tracks: list[TrainTrack]) -> tuple[list[str], list[str]]:
    """Training and validation tracks (a resumed run keeps its split, less files now gone)."""
    if ckpt is not None and "split" in ckpt.get("extra", {}):
        split = ckpt["extra"]["split"]
        return [p for p in split["train"] if os.path.exists(p)], [p for p in split["val"] if os.path.exists(p)]
    return split_tracks(collect_paths(opts, tracks), opts.val_fraction, opts.seed)


def _frames(
    opts: TrainOptions,
    ckpt: dict | None,
    cache: MelCache,
    paths: list[str],
    max_frames: int,
    workers: int,
    ctx: Context,
) -> tuple[dict[str, CachedMel], list]:
    """The cached frames of ``paths``: rank 0 decodes what the cache lacks, the others read it.

    A library longer than the store holds is sampled: cached tracks all count, and tracks not
    cached yet are decoded in a seeded random order only until the frames found are twice the
    store (the store then trims each to a centred excerpt). Decoding and caching it whole
    would take hours for a large library, and write past the cache budget the scan keeps."""
    order = [p for _, p in sorted(zip(np.random.default_rng(opts.seed).random(len(paths)), paths))]
    budget = DECODE_OVERFILL * max_frames if ckpt is None else None  # a resumed run needs its tracks
    if ctx.main:
        found, failures = cache.build(
            order, device=ctx.device, workers=workers, progress=ctx.progress, cancel=ctx.cancel, max_frames=budget
        )
        if cache.left_out:
            log.info(
                "%d tracks left out: the library is longer than the training budget (--memory-gb %g)",
                cache.left_out,
                opts.memory_gb,
            )
    if ctx.world > 1:
        dist.barrier()
    if not ctx.main:  # the cache now holds what rank 0 chose: take the same tracks, decode nothing
        found, failures = cache.build(order, device=ctx.device, workers=1, max_frames=0)
    return found, failures


def prepare_data(
    opts: TrainOptions,
    ckpt: dict | None,
    start: Start,
    tracks: list[TrainTrack],
    decode: DecodeSettings | None,
    ctx: Context,
) -> RunData:
    """Split the tracks, decode what the mel cache lacks, load the frames and build the samplers
    (and the related tracks when fine-tuning)."""
    fe = start.fe
    train_paths, val_paths = _split(opts, ckpt, tracks)
    if len(train_paths) < 2:
        raise ValueError("training needs at least two tracks (triplets take distant segments from another track)")
    cache = MelCache(opts.cache, fe, decode or DecodeSettings())
    workers = opts.workers if opts.workers > 0 else max(1, min(8, (os.cpu_count() or 2)))
    max_frames = int(opts.memory_gb * 1e9 / (fe.n_mels * 2))
    found, failures = _frames(opts, ckpt, cache, train_paths + val_paths, max_frames, workers, ctx)
    train_paths = [p for p in train_paths if p in found]
    val_paths = [p for p in val_paths if p in found]
    if len(train_paths) < 2:
        raise ValueError(f"only {len(train_paths)} training tracks could be decoded")
    paths = train_paths + val_paths
    store = SegmentStore.from_cached([(p, found[p]) for p in paths], max_frames=max_frames)
    # Copies of one recording count as one track: they are never each other's distant segment.
    groups = duplicate_groups([found[p] for p in paths])
    related = None
    if ckpt is not None and "related" in ckpt.get("extra", {}):
        related = RelatedPairs.from_state(ckpt["extra"]["related"])
    elif opts.similar_k:
        related = related_pairs(opts, start, stored_vectors(tracks, _start_sum(start)), paths, found, groups, ctx)
    store = _place(store, ctx.device)
    samplers = _samplers(opts, start, store, groups, len(train_paths), related)
    return RunData(
        train_paths, val_paths, failures, store, len(groups) - len(np.unique(groups)), related, *samplers, workers
    )


def _place(store: SegmentStore, device: torch.device) -> SegmentStore:
    if device.type != "cuda":
        return store
    free, _ = torch.cuda.mem_get_info(device)
    if store.mel.numel() * 2 < 0.25 * free:  # the whole corpus lives on the GPU: crops never wait
        return store.to(device)
    store.mel = store.mel.pin_memory()
    return store


def _samplers(
    opts: TrainOptions,
    start: Start,
    store: SegmentStore,
    groups: np.ndarray,
    n_train: int,
    related: RelatedPairs | None,
) -> tuple[TripletSampler, TripletSampler | None, TripletSampler | None]:
    """Training anchors, validation anchors, and where validation draws its distant segments."""
    fe = start.fe
    piece_group = groups[store.piece_track]
    tr_pieces = np.nonzero(store.piece_track < n_train)[0]
    va_pieces = np.nonzero(store.piece_track >= n_train)[0]
    W = int(round(opts.window_seconds / (fe.hop_length / fe.sr)))
    sampler = TripletSampler(
        store.lengths, piece_group, fe.segment_frames, W, tr_pieces, related, mutual_p=opts.mutual_positives
    )
    val_sampler = (
        TripletSampler(store.lengths, piece_group, fe.segment_frames, W, va_pieces, related) if len(va_pieces) else None
    )
    val_pool = val_sampler if (val_sampler is not None and len(np.unique(piece_group[va_pieces])) >= 2) else None
    if val_pool is None and val_sampler is not None:
        val_pool = TripletSampler(store.lengths, piece_group, fe.segment_frames, W, related=related)
    return sampler, val_sampler, val_pool


def _start_sum(start: Start) -> str | None:
    """The checksum whose stored vectors may stand in for the starting model's own (fine-tuning
    a model as it was saved: not re-pooled)."""
    if start.init_ckpt is not None and start.model.cfg == start.loaded.config:
        return start.loaded.checksum
    return None


def related_pairs(
    opts: TrainOptions,
    start: Start,
    stored: dict[str, np.ndarray],
    paths: list[str],
    found: dict,
    groups: np.ndarray,
    ctx: Context,
) -> RelatedPairs:
    """Each track's ``opts.similar_k`` nearest tracks under the starting model (:mod:`trainer.related`).

    The caller usually holds every track's vector under the starting model already (a scan
    made them: ``stored``); only tracks without one are embedded here."""
    from trainer.evaluate import track_vectors

    report(ctx.progress, "related", 0, 0, f"{len(groups)} tracks")
    model = start.model
    loaded = LoadedModel(
        name=start.name, model=model.to(ctx.device), config=model.cfg, frontend=start.fe, trained=True, checksum=""
    )
    X = {p: stored[p] for p in paths if p in stored}
    todo = [p for p in paths if p not in X]
    if todo:
        X.update(zip(todo, track_vectors(loaded, [found[p] for p in todo], device=ctx.device, cancel=ctx.cancel)))
    k = min(opts.similar_k, related_limit(len(np.unique(groups))))
    related = nearest_pairs(np.stack([X[p] for p in paths]), groups, k)
    report(
        ctx.progress,
        "related",
        1,
        1,
        f"{len(related)} pairs",
        None,
        {"tracks": len(paths), "stored": len(paths) - len(todo), "k": k},
    )
    log.info(
        "related tracks: %d pairs (%d nearest per track%s); %d of %d tracks' vectors from the library",
        len(related),
        k,
        "" if k == opts.similar_k else ", at most a quarter of the others",
        len(paths) - len(todo),
        len(paths),
    )
    return related
