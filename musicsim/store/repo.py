"""Queries and writes on the library database. All SQL goes through the ORM / bound params."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from musicsim.store.schema import (
    ClusterInfo,
    Embedding,
    Failure,
    Meta,
    Model,
    Root,
    Track,
    TrackDescriptors,
    TrackMap,
    utcnow,
)

TAG_FIELDS = ("title", "artist", "album", "albumartist", "genre", "year", "tracknumber", "duration")


def next_seq(s: Session) -> int:
    row = s.get(Meta, "embedding_seq")
    value = int(row.value) + 1 if row else 1
    if row:
        row.value = str(value)
    else:
        s.add(Meta(key="embedding_seq", value=str(value)))
    return value


# --- models -------------------------------------------------------------------------------


def register_model(
    s: Session,
    *,
    name: str,
    checksum: str,
    path: str | None,
    frontend: dict,
    config: dict,
    trained: bool,
    metrics: dict | None = None,
) -> Model:
    """The model row for these weights, created when new (a name is never reused for other weights)."""
    row = s.scalars(select(Model).where(Model.checksum == checksum)).first()
    if row is not None:
        return row
    taken = set(s.scalars(select(Model.name)))
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}-{n}", n + 1
    row = Model(
        name=unique,
        checksum=checksum,
        path=path,
        frontend=frontend,
        config=config,
        trained=trained,
        metrics=metrics or {},
        active=False,
    )
    s.add(row)
    s.flush()
    return row


def active_model(s: Session) -> Model | None:
    return s.scalars(select(Model).where(Model.active.is_(True))).first()


def set_active(s: Session, model: Model) -> None:
    s.execute(update(Model).values(active=False))
    model.active = True


def list_models(s: Session) -> list[Model]:
    return list(s.scalars(select(Model).order_by(Model.created)))


def model_by_name(s: Session, name: str) -> Model | None:
    return s.scalars(select(Model).where(Model.name == name)).first()


# --- tracks -------------------------------------------------------------------------------


def known_files(s: Session) -> dict[str, tuple[int, int, float, str]]:
    """path -> (track id, size, mtime, status) for every track row."""
    rows = s.execute(select(Track.path, Track.id, Track.size, Track.mtime, Track.status))
    return {p: (i, sz, mt, st) for p, i, sz, mt, st in rows}


def failed_files(s: Session) -> dict[str, tuple[int | None, float | None]]:
    return {p: (sz, mt) for p, sz, mt in s.execute(select(Failure.path, Failure.size, Failure.mtime))}


def embedded_track_ids(s: Session, model_id: int) -> set[int]:
    return set(s.scalars(select(Embedding.track_id).where(Embedding.model_id == model_id)))


def upsert_track(
    s: Session,
    *,
    path: str,
    size: int,
    mtime: float,
    fmt: str,
    tags: dict,
    degraded: bool = False,
    renderer: str | None = None,
) -> Track:
    track = s.scalars(select(Track).where(Track.path == path)).first()
    if track is None:
        track = Track(path=path, size=size, mtime=mtime, format=fmt, extra={})
        s.add(track)
    track.size, track.mtime, track.format = size, mtime, fmt
    for key in TAG_FIELDS:
        setattr(track, key, tags.get(key))
    track.extra = dict(tags.get("extra") or {})
    track.status, track.error = "ok", None
    track.degraded, track.renderer = degraded, renderer
    track.analysed = utcnow()
    s.flush()
    s.execute(delete(Failure).where(Failure.path == path))
    return track


def save_embedding(
    s: Session, track_id: int, model_id: int, vector: np.ndarray, segments: np.ndarray, starts: np.ndarray
) -> int:
    seq = next_seq(s)
    row = s.get(Embedding, (track_id, model_id))
    if row is None:
        row = Embedding(track_id=track_id, model_id=model_id)
        s.add(row)
    row.dim = int(vector.shape[0])
    row.vector = np.asarray(vector, np.float32).tobytes()
    row.n_segments = int(segments.shape[0])
    row.segments = np.asarray(segments, np.float16).tobytes()
    row.segment_starts = np.asarray(starts, np.float32).tobytes()
    row.seq = seq
    return seq


def record_failure(s: Session, *, path: str, stage: str, reason: str, size: int | None, mtime: float | None) -> None:
    row = s.scalars(select(Failure).where(Failure.path == path)).first()
    if row is None:
        row = Failure(path=path, stage=stage, reason=reason)
        s.add(row)
    row.stage, row.reason, row.size, row.mtime, row.at = stage, reason, size, mtime, utcnow()
    # A track analysed before keeps its old embedding out of results until it decodes again.
    track = s.scalars(select(Track).where(Track.path == path)).first()
    if track is not None:
        track.status, track.error = "failed", reason
        _touch_embeddings(s, [track.id])


def mark_status(s: Session, track_ids: Iterable[int], status: str) -> None:
    ids = list(track_ids)
    for chunk in _chunks(ids, 500):
        s.execute(update(Track).where(Track.id.in_(chunk)).values(status=status))
    _touch_embeddings(s, ids)


def _touch_embeddings(s: Session, track_ids: list[int]) -> None:
    """Give embeddings a new seq so the index notices the track's change of status."""
    for chunk in _chunks(track_ids, 500):
        for emb in s.scalars(select(Embedding).where(Embedding.track_id.in_(chunk))):
            emb.seq = next_seq(s)


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def vectors(
    s: Session, model_id: int, *, since_seq: int = 0, status: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(track ids, track vectors [n, d], seqs, is_live) for a model's embeddings written after ``since_seq``."""
    q = (
        select(Embedding.track_id, Embedding.vector, Embedding.seq, Track.status)
        .join(Track, Track.id == Embedding.track_id)
        .where(Embedding.model_id == model_id, Embedding.seq > since_seq)
        .order_by(Embedding.track_id)
    )
    if status:
        q = q.where(Track.status == status)
    rows = s.execute(q).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, bool)
    ids = np.array([r[0] for r in rows], np.int64)
    X = np.stack([np.frombuffer(r[1], np.float32) for r in rows])
    seqs = np.array([r[2] for r in rows], np.int64)
    live = np.array([r[3] == "ok" for r in rows], bool)
    return ids, X, seqs, live


def max_seq(s: Session) -> int:
    row = s.get(Meta, "embedding_seq")
    return int(row.value) if row else 0


def find_tracks(s: Session, query: str, *, limit: int = 20) -> list[Track]:
    """Tracks whose id, path, or title/artist text matches ``query`` (parameters bound, never formatted)."""
    q = query.strip()
    if q.isdigit():
        t = s.get(Track, int(q))
        if t is not None:
            return [t]
    exact = s.scalars(select(Track).where(Track.path == q)).first()
    if exact is not None:
        return [exact]
    words = q.split()
    stmt = select(Track).where(Track.status == "ok")
    for w in words:
        like = f"%{_escape_like(w)}%"
        stmt = stmt.where(
            or_(
                Track.title.ilike(like, escape="\\"),
                Track.artist.ilike(like, escape="\\"),
                Track.path.ilike(like, escape="\\"),
            )
        )
    return list(s.scalars(stmt.order_by(Track.artist, Track.title).limit(limit)))


def tracks_of_size(s: Session, size: int) -> list[Track]:
    """Tracks whose file had ``size`` bytes when analysed (the candidates for a hard link to a file)."""
    return list(s.scalars(select(Track).where(Track.size == size, Track.status == "ok").order_by(Track.id)))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def counts(s: Session) -> dict[str, int]:
    rows = s.execute(select(Track.status, func.count()).group_by(Track.status)).all()
    out = {status: n for status, n in rows}
    out["degraded"] = (
        s.scalar(select(func.count()).select_from(Track).where(Track.degraded.is_(True), Track.status == "ok")) or 0
    )
    out["failures"] = s.scalar(select(func.count()).select_from(Failure)) or 0
    return out


def add_roots(s: Session, paths: Iterable[str]) -> None:
    have = set(s.scalars(select(Root.path)))
    for p in paths:
        if p not in have:
            s.add(Root(path=p))
            have.add(p)


def remove_root(s: Session, path: str) -> None:
    s.execute(delete(Root).where(Root.path == path))


def roots(s: Session) -> list[str]:
    return list(s.scalars(select(Root.path).order_by(Root.path)))


# --- reading the library as the facade shows it ----------------------------------------------


def failures(s: Session) -> list[Failure]:
    return list(s.scalars(select(Failure).order_by(Failure.path)))


def purge_missing(
    s: Session, exists: Callable[[str], bool], keep: Callable[[str], bool] = lambda _path: False
) -> list[int]:
    """Delete missing tracks (their embeddings go with them) and the failures of files that
    ``exists`` says are gone, except where ``keep(path)`` (a folder that is not there now: an
    unmounted drive); return the deleted tracks' ids."""
    rows = s.execute(select(Track.id, Track.path).where(Track.status == "missing"))
    gone = [tid for tid, path in rows if not keep(path)]
    for chunk in _chunks(gone, 500):
        s.execute(delete(Track).where(Track.id.in_(chunk)))
    for f in list(s.scalars(select(Failure))):
        if not exists(f.path) and not keep(f.path):
            s.delete(f)
    return gone


def stored_vector(s: Session, track_id: int, model_id: int) -> np.ndarray | None:
    """A track's stored (raw) vector for a model, or None when it has none."""
    emb = s.get(Embedding, (track_id, model_id))
    return None if emb is None else np.frombuffer(emb.vector, np.float32)


def tracks_by_id(s: Session, ids: Iterable[int]) -> dict[int, Track]:
    wanted = list(ids)
    out: dict[int, Track] = {}
    for chunk in _chunks(wanted, 500):
        out.update((t.id, t) for t in s.scalars(select(Track).where(Track.id.in_(chunk))))
    return out


def tracks(s: Session, *, status: str | None = "ok") -> list[Track]:
    q = select(Track).order_by(Track.id)
    if status:
        q = q.where(Track.status == status)
    return list(s.scalars(q))


def track_rows(s: Session, *, since_id: int = 0) -> list[tuple]:
    """Analysed tracks with id > since_id as plain tuples, ordered by id:
    (id, title, artist, album, genre, duration, format, path, year)."""
    return [
        tuple(r)
        for r in s.execute(
            select(
                Track.id,
                Track.title,
                Track.artist,
                Track.album,
                Track.genre,
                Track.duration,
                Track.format,
                Track.path,
                Track.year,
            )
            .where(Track.status == "ok", Track.id > since_id)
            .order_by(Track.id)
        )
    ]


def track_paths(s: Session) -> dict[int, str]:
    return {int(i): str(p) for i, p in s.execute(select(Track.id, Track.path)).all()}


# --- watching the library folders (musicsim.library.watch) ------------------------------------


def _under(path: str):
    """Tracks at ``path`` or anywhere below it (a file or a folder; LIKE wildcards escaped)."""
    prefix = _escape_like(path.rstrip("/\\")) + "/%"
    return or_(Track.path == path, Track.path.like(prefix, escape="\\"))


def tracks_under(s: Session, paths: Iterable[str]) -> dict[str, tuple[int, str]]:
    """path -> (track id, status) of every track at or below any of ``paths``."""
    out: dict[str, tuple[int, str]] = {}
    for p in paths:
        for tid, path, status in s.execute(select(Track.id, Track.path, Track.status).where(_under(p))):
            out[str(path)] = (int(tid), str(status))
    return out


def relocation_candidates(s: Session, size: int, fmt: str) -> list[Track]:
    """Missing tracks of this size and format: a file that appeared may be one of them, moved."""
    return list(
        s.scalars(select(Track).where(Track.size == size, Track.format == fmt, Track.status == "missing").limit(50))
    )


def relocate_track(s: Session, track_id: int, *, path: str, size: int, mtime: float) -> bool:
    """Give a track its new path (its id, vectors, playlists and map position stay); False when
    another track already holds ``path``."""
    if s.scalars(select(Track.id).where(Track.path == path, Track.id != track_id)).first() is not None:
        return False
    track = s.get(Track, track_id)
    if track is None:
        return False
    track.path, track.size, track.mtime, track.status, track.error = path, size, mtime, "ok", None
    s.execute(delete(Failure).where(Failure.path == path))
    _touch_embeddings(s, [track_id])
    return True


def revive_unchanged(s: Session, files: Iterable[tuple[str, int, float]]) -> list[int]:
    """Missing tracks whose file is back unchanged (path, size, mtime) become live again."""
    back = []
    for path, size, mtime in files:
        t = s.scalars(select(Track).where(Track.path == path, Track.status == "missing")).first()
        if t is not None and t.size == size and t.mtime == mtime:
            back.append(t.id)
    mark_status(s, back, "ok")
    return back


# --- descriptors (tempo, key, loudness, ...) ---------------------------------------------

DESCRIPTOR_FIELDS = (
    "tempo",
    "beat_clarity",
    "key",
    "mode",
    "key_confidence",
    "loudness",
    "loudness_range",
    "brightness",
    "percussive",
)


def save_descriptors(s: Session, track_id: int, values: dict) -> None:
    """Store (or replace) a track's descriptors; keys outside DESCRIPTOR_FIELDS are ignored."""
    row = s.get(TrackDescriptors, track_id)
    if row is None:
        row = TrackDescriptors(track_id=track_id)
        s.add(row)
    for key in DESCRIPTOR_FIELDS:
        setattr(row, key, values.get(key))


def described_track_ids(s: Session) -> set[int]:
    return set(s.scalars(select(TrackDescriptors.track_id)))


def descriptors(s: Session, ids: Iterable[int] | None = None) -> dict[int, dict]:
    """track id -> {field: value} for the given tracks (every described live track when None)."""
    cols = [getattr(TrackDescriptors, f) for f in DESCRIPTOR_FIELDS]
    q = select(TrackDescriptors.track_id, *cols).join(Track, Track.id == TrackDescriptors.track_id)
    out: dict[int, dict] = {}
    chunks = [None] if ids is None else list(_chunks(list(ids), 500))
    for chunk in chunks:
        qq = q.where(Track.status == "ok") if chunk is None else q.where(TrackDescriptors.track_id.in_(chunk))
        for row in s.execute(qq):
            out[int(row[0])] = dict(zip(DESCRIPTOR_FIELDS, row[1:]))
    return out


# --- the cluster hierarchy -------------------------------------------------------------------


def level_rows(s: Session, model_id: int) -> list[tuple[int, bytes]]:
    """(track id, int16 group ids at every level) of the live tracks with a stored hierarchy."""
    q = (
        select(TrackMap.track_id, TrackMap.levels)
        .join(Track, Track.id == TrackMap.track_id)
        .where(TrackMap.model_id == model_id, Track.status == "ok", TrackMap.levels.is_not(None))
        .order_by(TrackMap.track_id)
    )
    return [(int(t), bytes(b or b"")) for t, b in s.execute(q)]


def set_shown_level(
    s: Session, model_id: int, track_ids: np.ndarray, labels: np.ndarray, groups: dict[int, tuple[str, np.ndarray]]
) -> None:
    """Show another level: each track's cluster, and the groups' names, sizes and centres."""
    rows = [{"track_id": t, "model_id": model_id, "cluster": c} for t, c in zip(track_ids.tolist(), labels.tolist())]
    if rows:
        s.execute(update(TrackMap), rows)  # one executemany by primary key
    s.execute(delete(ClusterInfo).where(ClusterInfo.model_id == model_id))
    sizes = np.bincount(labels)
    for c, (name, centre) in groups.items():
        s.add(
            ClusterInfo(
                model_id=model_id,
                cluster=int(c),
                name=name,
                size=int(sizes[c]),
                centroid=np.asarray(centre, np.float32).tobytes(),
            )
        )
