"""SQLAlchemy models. Schema version 2 (2 added ``descriptors``); see db.py for migrations."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about the library (e.g. the embedding sequence counter)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Root(Base):
    """A folder the user added to the library (re-scanned on demand)."""

    __tablename__ = "roots"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    added: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Track(Base):
    __tablename__ = "tracks"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True, index=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime: Mapped[float] = mapped_column(Float)
    format: Mapped[str] = mapped_column(String)
    duration: Mapped[float | None] = mapped_column(Float)
    title: Mapped[str | None] = mapped_column(String)
    artist: Mapped[str | None] = mapped_column(String, index=True)
    album: Mapped[str | None] = mapped_column(String)
    albumartist: Mapped[str | None] = mapped_column(String)
    genre: Mapped[str | None] = mapped_column(String)
    year: Mapped[int | None] = mapped_column(Integer)
    tracknumber: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    # ok | failed | missing
    status: Mapped[str] = mapped_column(String, default="ok", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    renderer: Mapped[str | None] = mapped_column(String)
    added: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    analysed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    embeddings: Mapped[list[Embedding]] = relationship(back_populates="track", cascade="all, delete-orphan")


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    checksum: Mapped[str] = mapped_column(String)
    path: Mapped[str | None] = mapped_column(String)  # None: built in (seeded untrained / shipped default)
    frontend: Mapped[dict] = mapped_column(JSON)
    config: Mapped[dict] = mapped_column(JSON)
    trained: Mapped[bool] = mapped_column(Boolean)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class Embedding(Base):
    """A track's vector (float32) and its segment vectors (float16 [n, dim]) for one model."""

    __tablename__ = "embeddings"
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    n_segments: Mapped[int] = mapped_column(Integer)
    segments: Mapped[bytes] = mapped_column(LargeBinary)
    segment_starts: Mapped[bytes] = mapped_column(LargeBinary)
    # Monotonic write sequence: the HNSW index records the last one it holds, so on open
    # every vector written after it (a crash between commit and index save) is caught up.
    seq: Mapped[int] = mapped_column(Integer, index=True)

    track: Mapped[Track] = relationship(back_populates="embeddings")


class Failure(Base):
    __tablename__ = "failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    stage: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(Integer)
    mtime: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Playlist(Base):
    __tablename__ = "playlists"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    items: Mapped[list[PlaylistItem]] = relationship(
        back_populates="playlist", cascade="all, delete-orphan", order_by="PlaylistItem.position"
    )


class PlaylistItem(Base):
    __tablename__ = "playlist_items"
    playlist_id: Mapped[int] = mapped_column(ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    playlist: Mapped[Playlist] = relationship(back_populates="items")


class TrackMap(Base):
    """Per-model organisation results: cluster, 2-D map position, outlier score."""

    __tablename__ = "track_maps"
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    cluster: Mapped[int] = mapped_column(Integer)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    outlier: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[dict] = mapped_column(JSON, default=dict)
    # The track's group at every level of the cluster hierarchy (int16 ids, level 2 first;
    # schema 2); ``cluster`` is its group at the level shown.
    levels: Mapped[bytes | None] = mapped_column(LargeBinary)


class ClusterInfo(Base):
    __tablename__ = "clusters"
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    cluster: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    size: Mapped[int] = mapped_column(Integer)
    centroid: Mapped[bytes] = mapped_column(LargeBinary)


class TrackDescriptors(Base):
    """A track's musical descriptors (musicsim.audio.descriptors), computed during the scan.

    Independent of the model: one row per track, replaced when the file is analysed again.
    """

    __tablename__ = "descriptors"
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    tempo: Mapped[float | None] = mapped_column(Float)
    beat_clarity: Mapped[float | None] = mapped_column(Float)
    key: Mapped[str | None] = mapped_column(String)
    mode: Mapped[str | None] = mapped_column(String)
    key_confidence: Mapped[float | None] = mapped_column(Float)
    loudness: Mapped[float | None] = mapped_column(Float)
    loudness_range: Mapped[float | None] = mapped_column(Float)
    brightness: Mapped[float | None] = mapped_column(Float)
    percussive: Mapped[float | None] = mapped_column(Float)
