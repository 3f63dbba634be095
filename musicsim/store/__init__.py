"""SQLite storage (SQLAlchemy 2): the source of truth for tracks, models and embeddings."""
