"""Training on a library re-embeds it: the new model becomes active, the old one stays listed."""

import os

import numpy as np

from musicsim.library import Library
from musicsim.library.finetune import finetune
from musicsim.library.reembed import reembed_library
from musicsim.model.checkpoint import load_model
from musicsim.store import repo
from trainer.train import TrainOptions, train


def _scan(folder, db):
    lib = Library(db)
    rep = lib.scan([str(folder)])
    assert rep.analysed >= 8 and not rep.cancelled
    return lib


def test_train_on_db_reembeds_and_activates(family_library, tmp_path):
    root = family_library[0] if isinstance(family_library, tuple) else family_library
    db = tmp_path / "lib.db"
    lib = _scan(root, db)
    old = lib.model_row
    n_tracks = len(lib.tracks())
    lib.close()

    with Library(db) as lib:
        res = finetune(
            lib,
            TrainOptions(
                db=str(db),
                init=None,
                width=4,
                embed_dim=16,
                segment_frames=64,
                batch_size=8,
                steps=3,
                cache=str(tmp_path / "cache"),
                device="cpu",
                workers=1,
                val_fraction=0.0,
                name="tuned",
                guard=False,
            ),
        )
    assert res.model_id is not None and res.reembedded == n_tracks and res.activated
    assert res.model_path.startswith(str(tmp_path / "lib-models"))

    with Library(db) as lib:
        assert lib.model_row.name == "tuned" and lib.model_row.id == res.model_id and lib.model_row.active
        with lib.db.session() as s:
            models = {m.name: m for m in repo.list_models(s)}
            assert old.name in models and not models[old.name].active
            assert len(repo.embedded_track_ids(s, old.id)) == n_tracks  # old vectors kept
        ids, X = lib.embeddings()
        # multi-band pooling from scratch: mean+std of the 16-d embedding, of the third stage's
        # 2 x 16 channel statistics in each of 2 frequency bands (width 4 -> 16 channels), of
        # the second stage's 2 x 8 x 2 and of the first stage's 2 x 4 x 2
        assert lib.loaded.config.pooling == "multiband"
        assert len(ids) == n_tracks and X.shape[1] == 2 * (16 + 64 + 32 + 16)
        assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)
        assert len(lib.index.ann()) == n_tracks
        hits = lib.similar(int(ids[0]), n=3)
        assert len(hits) == 3


def test_reembed_library_directly_keeps_previous_selectable(family_library, tmp_path):
    root = family_library[0] if isinstance(family_library, tuple) else family_library
    db = tmp_path / "lib.db"
    lib = _scan(root, db)
    first = lib.model_row
    res = train(
        TrainOptions(
            folders=[str(root)],
            init=None,
            width=4,
            embed_dim=16,
            segment_frames=64,
            batch_size=8,
            steps=2,
            cache=str(tmp_path / "cache"),
            device="cpu",
            workers=1,
            out=str(tmp_path / "run"),
            name="direct",
        )
    )
    seen = []
    out = reembed_library(lib, load_model(res.model_path), seen.append, None, cache=str(tmp_path / "cache"))
    assert out["active"] and out["embedded"] == len(lib.tracks())
    assert lib.model_row.id == out["model_id"] and lib.model_row.name == "direct"
    assert any(p.stage == "reembed" for p in seen)
    assert len(lib.index.ann()) == len(lib.tracks())
    # switching back to the first model works and its index is intact
    with lib.db.session() as s:
        row = s.get(type(first), first.id)
        repo.set_active(s, row)
    lib.activate(row)
    assert len(lib.index.ann()) == len(lib.tracks())
    lib.close()


def test_reembedding_decodes_in_batches_and_stores_within_the_cache_budget(family_library, tmp_path, monkeypatch):
    """Tracks the cache lacks are decoded a batch at a time; only what fits the scan's cache
    budget is stored, and the vectors are those the cached frames give."""
    from musicsim.library.reembed import model_vectors
    from musicsim.melcache import DecodeSettings, MelCache
    from musicsim.model.embed import Embedder

    root = family_library[0] if isinstance(family_library, tuple) else family_library
    budget = 350_000  # bytes: about three of these 20-s tracks' frames
    monkeypatch.setenv("MUSICSIM_MEL_CACHE_GB", str(budget / 2**30))
    lib = _scan(root, tmp_path / "lib.db")
    paths = {t.id: t.path for t in lib.tracks()}
    res = train(
        TrainOptions(
            folders=[str(root)],
            init=None,
            width=4,
            embed_dim=16,
            segment_frames=64,
            batch_size=8,
            steps=1,
            cache=str(tmp_path / "train-cache"),
            device="cpu",
            workers=1,
            out=str(tmp_path / "run"),
            name="batched",
        )
    )
    m = load_model(res.model_path)
    seen = []
    out = reembed_library(
        lib, m, seen.append, None, cache=str(tmp_path / "fresh"), workers=1, batch_tracks=3, activate=False
    )
    assert out["embedded"] == len(paths) and not out["failed"] and not out["active"]
    stored = list((tmp_path / "fresh").rglob("*.npy"))
    assert 1 <= len(stored) < len(paths) and sum(p.stat().st_size for p in stored) <= budget
    # one stage from start to end, whose count never goes back: reading and embedding each batch
    assert {p.stage for p in seen} == {"reembed"} and {p.total for p in seen} == {len(paths)}
    done = [p.done for p in seen]
    assert done == sorted(done) and done[-1] == len(paths)
    reading = [p.current for p in seen if p.current.startswith("reading ")]
    assert {os.path.basename(r[len("reading ") :]) for r in reading} <= {os.path.basename(p) for p in paths.values()}
    assert reading and any(p.current in {os.path.basename(q) for q in paths.values()} for p in seen)  # embedding
    # the same vectors as from frames that are all cached
    full, _ = MelCache(tmp_path / "full", m.frontend, DecodeSettings.from_config(lib.config)).build(
        list(paths.values()), workers=1
    )
    emb = Embedder(m, device="cpu")
    ids, X = model_vectors(lib, out["model_id"])
    assert len(ids) == len(paths)
    for tid, x in zip(ids, X):
        segs, _ = full[paths[int(tid)]].segments(m.frontend)
        assert np.allclose(emb.track_vector(emb.embed_segments(segs)), x, atol=2e-3)
    lib.close()


def test_library_train_returns_what_the_app_shows(family_library, tmp_path):
    """``Library.train`` (the app's Training tab) delegates to ``musicsim.library.finetune.train_library``."""
    from musicsim.library.finetune import train_library

    root, families = family_library
    with _scan(root, tmp_path / "lib.db") as lib:
        tiny = dict(
            init=None,
            width=4,
            embed_dim=16,
            segment_frames=64,
            batch_size=8,
            steps=2,
            workers=1,
            cache=str(tmp_path / "cache"),
            val_fraction=0.0,
            name="app-run",
            guard=False,
        )
        out = train_library(lib, minutes=5.0, device="cpu", **tiny)
        assert set(out) == {
            "name",
            "cancelled",
            "steps",
            "epochs",
            "seconds",
            "metrics",
            "reembedded",
            "activated",
            "guard",
            "model_path",
            "summary",
            "stopped",
        }
        assert out["name"] == "app-run" and out["steps"] == 2 and not out["cancelled"]
        assert out["stopped"] == ""  # a budget run: no cool-down on a plateau (trainer.plateau)
        assert out["activated"] and out["reembedded"] == len(families) and lib.model_row.name == "app-run"
        assert out["model_path"].startswith(str(tmp_path / "lib-models")) and "trained app-run" in out["summary"]
        again = lib.train(minutes=5.0, device="cpu", **dict(tiny, name="via-facade", seed=1))  # other weights
        assert again["activated"] and lib.model_row.name == "via-facade"
