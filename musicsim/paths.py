"""Where musicsim keeps its data. ``MUSICSIM_HOME`` overrides everything (tests use it)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    home = os.environ.get("MUSICSIM_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("musicsim", appauthor=False))


def cache_dir() -> Path:
    home = os.environ.get("MUSICSIM_HOME")
    if home:
        return Path(home).expanduser() / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir("musicsim", appauthor=False))


def default_db() -> Path:
    return data_dir() / "library.db"


def index_dir(db_path: str | os.PathLike) -> Path:
    """The HNSW indexes live next to the database they are derived from."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.stem + "-index")


def models_dir(db_path: str | os.PathLike) -> Path:
    """Models trained on this library live next to its database."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.stem + "-models")
