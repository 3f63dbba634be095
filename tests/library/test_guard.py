"""The album/folder check that decides whether a fine-tuned model replaces the one in use."""

from types import SimpleNamespace

import numpy as np
import pytest

from musicsim.library import Library
from musicsim.library.finetune import finetune, track_groups
from musicsim.store import repo
from trainer.guard import grouping_precision, judge
from trainer.train import TrainOptions


def _vectors(labels, spread, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(set(labels)), 16))
    X = centres[labels] + spread * rng.standard_normal((len(labels), 16))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_track_groups_use_album_then_folder():
    t = [
        SimpleNamespace(id=1, path="/m/a/1.mp3", album="Blue", albumartist=None, artist="X"),
        SimpleNamespace(id=2, path="/m/b/2.mp3", album="blue ", albumartist="x", artist="Y"),
        SimpleNamespace(id=3, path="/m/a/3.mp3", album=None, albumartist=None, artist="X"),
        SimpleNamespace(id=4, path="/m/a/4.mp3", album="", albumartist=None, artist=None),
    ]
    g = track_groups(t)
    assert g[1] == g[2]  # one album whichever folder, case and spacing aside
    assert g[3] == g[4] != g[1]  # untagged: their folder


def test_grouping_precision_and_verdicts():
    labels = np.repeat(np.arange(4), 6)
    tight, loose = _vectors(labels, 0.05), _vectors(labels, 3.0)
    assert grouping_precision(tight, labels)[0] == pytest.approx(1.0)
    assert grouping_precision(loose, labels)[0] < 0.6
    # singletons are neighbours but never queries; too few queries: no score
    score, n = grouping_precision(tight, np.arange(24))
    assert score is None and n == 0
    ids = np.arange(1, 25)
    groups = {int(i): f"album:{lab}" for i, lab in zip(ids, labels)}
    worse = judge(groups, (ids, tight), (ids, loose))
    assert not worse.keep_new and worse.old > worse.new and "stays active" in worse.reason
    better = judge(groups, (ids, loose), (ids, tight))
    assert better.keep_new and better.new == pytest.approx(1.0)
    # only the tracks both models embedded are compared (a track the new model lacks is left out)
    part = judge(groups, (ids, tight), (ids[1:], tight[1:]))
    assert part.keep_new and part.queries == 23
    none = judge({int(i): f"folder:{i}" for i in ids}, (ids, tight), (ids, loose))
    assert none.keep_new and none.old is None and "nothing to check against" in none.reason


def test_training_on_a_library_applies_the_check(family_library, tmp_path):
    root = family_library[0] if isinstance(family_library, tuple) else family_library
    db = tmp_path / "lib.db"
    with Library(db) as lib:
        lib.scan([str(root)])
        old = lib.model_row
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
                steps=2,
                cache=str(tmp_path / "cache"),
                device="cpu",
                workers=1,
                val_fraction=0.0,
                name="tiny",
            ),
        )
    assert res.guard and res.guard_scores[0] is not None  # family folders: enough to judge
    old_score, new_score = res.guard_scores
    assert res.activated == (new_score >= old_score)
    with Library(db) as lib:
        assert lib.model_row.name == ("tiny" if res.activated else old.name)
        with lib.db.session() as s:
            names = [m.name for m in repo.list_models(s)]
        assert "tiny" in names and old.name in names  # either way both stay selectable
    assert ("not activated" in res.summary) != res.activated
