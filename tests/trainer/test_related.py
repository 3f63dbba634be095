"""Related tracks (each track's nearest under the starting model) are never distant."""

import numpy as np
import torch

from trainer.loss import batch_triplet_loss
from trainer.related import RelatedPairs, nearest_pairs
from trainer.sampling import TripletSampler


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_nearest_pairs_relate_each_track_to_its_nearest_other_tracks():
    rng = np.random.default_rng(0)
    centres = _unit(rng.standard_normal((3, 16)))
    X = _unit(np.repeat(centres, 4, axis=0) + 0.05 * rng.standard_normal((12, 16)))
    ids = np.arange(12)
    ids[1] = 0  # rows 0 and 1 are copies of one recording: one track
    rp = nearest_pairs(X, ids, k=2)
    fam = np.repeat(np.arange(3), 4)
    a, b = np.divmod(rp.keys, rp.n)
    assert rp.n == 12 and len(rp) > 0 and (a < b).all()
    first_row = {0: 0, **{int(i): r for r, i in enumerate(ids) if r != 1}}
    assert all(fam[first_row[x]] == fam[first_row[y]] for x, y in zip(a, b))  # only within a family
    assert rp.contains(2, 3) == rp.contains(3, 2)  # symmetric
    assert not rp.contains(0, 0)
    # torch and numpy agree
    ta, tb = torch.arange(12).unsqueeze(1), torch.arange(12).unsqueeze(0)
    assert np.array_equal(rp.mask(ta, tb).numpy(), rp.contains(np.arange(12)[:, None], np.arange(12)[None, :]))
    # the state round-trips (checkpoints keep it for exact resume)
    again = RelatedPairs.from_state(rp.state())
    assert np.array_equal(again.keys, rp.keys) and again.n == rp.n
    assert len(nearest_pairs(X[:1], ids[:1], k=5)) == 0


def test_sampler_never_draws_a_related_track_while_an_unrelated_one_exists():
    lengths = np.full(6, 400)
    tracks = np.arange(6)
    related = RelatedPairs.from_pairs(np.array([[0, 1], [0, 2], [0, 3], [0, 4]]), 6)
    s = TripletSampler(lengths, tracks, 64, 50, related=related)
    rng = np.random.default_rng(1)
    piece, _ = s.distant(rng, np.zeros(500, np.int64))
    assert set(tracks[piece]) == {5}
    # every other track related: any other track will do
    all_rel = RelatedPairs.from_pairs(np.array([[0, t] for t in range(1, 6)]), 6)
    piece, _ = TripletSampler(lengths, tracks, 64, 50, related=all_rel).distant(rng, np.zeros(50, np.int64))
    assert (tracks[piece] != 0).all() and len(set(tracks[piece])) > 1


def test_batch_all_ignores_negatives_of_related_tracks():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    n = torch.nn.functional.normalize(a + 0.3 * torch.randn(4, 8), dim=1)
    d = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    d[0] = a[1]  # a distant segment identical to anchor 1: a violating negative for it
    ta, td = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])
    plain, _ = batch_triplet_loss(a, n, d, ta, td, mining="all")
    rel = RelatedPairs.from_pairs(np.array([[1, 4]]), 8)  # ...but its track is related to anchor 1's
    masked, _ = batch_triplet_loss(a, n, d, ta, td, mining="all", related=rel)
    # the same as if that segment belonged to anchor 1's own track
    same, _ = batch_triplet_loss(a, n, d, ta, torch.tensor([1, 5, 6, 7]), mining="all")
    assert torch.isclose(masked, same) and not torch.isclose(masked, plain)


def test_fine_tuning_a_library_reuses_its_stored_vectors(family_library, tmp_path):
    """The related-tracks pass takes the vectors the scan stored under the starting model (equal to
    what it would compute), embeds only tracks without one, and never trusts a changed file's."""
    import os

    from musicsim.library import Library
    from musicsim.library.finetune import finetune, stored_track_vectors, train_tracks
    from musicsim.melcache import DecodeSettings, MelCache
    from musicsim.model.checkpoint import DEFAULT_RESOURCE, load_model
    from musicsim.paths import cache_dir
    from trainer.evaluate import track_vectors
    from trainer.train import TrainOptions

    root, families = family_library
    db = tmp_path / "lib.db"
    start = load_model(DEFAULT_RESOURCE)
    with Library(db) as lib:
        lib.scan([str(root)])
        paths = [t.path for t in lib.tracks()]
        stored = stored_track_vectors(lib, start.checksum, paths)
        assert set(stored) == set(paths) and len(paths) == len(families)
        found, _ = MelCache(str(cache_dir()), start.frontend, DecodeSettings.from_config(lib.config)).build(
            paths, workers=1
        )
        fresh = track_vectors(start, [found[p] for p in paths], device="cpu")
        kept = np.stack([stored[p] for p in paths])
        # the scan embeds float32 frames, the cache keeps float16: the same vectors to rounding
        assert (np.sum(kept * fresh, axis=1) > 0.9995).all()
        ids = np.arange(len(paths))
        assert np.array_equal(nearest_pairs(kept, ids, 2).keys, nearest_pairs(fresh, ids, 2).keys)
        assert stored_track_vectors(lib, "0" * 16, paths) == {}  # no such model in this library
        changed = paths[0]
        st = os.stat(changed)
        os.utime(changed, (st.st_atime, st.st_mtime + 60))  # edited since the scan
        assert set(stored_track_vectors(lib, start.checksum, paths)) == set(paths[1:])

    seen = []
    opts = TrainOptions(
        db=str(db),
        steps=1,
        batch_size=8,
        device="cpu",
        workers=1,
        val_fraction=0.0,
        name="ft",
        similar_k=2,
        reembed=False,
    )
    with Library(db) as lib:  # what the trainer is given: each track's stored vector under the starting model
        given = train_tracks(lib, opts)
        assert [t.path for t in given] == paths and [t.vector is not None for t in given] == [False] + [True] * (
            len(paths) - 1
        )
        assert {t.vector_model for t in given[1:]} == {start.checksum}
        assert train_tracks(lib, TrainOptions(db=str(db), similar_k=0))[1].vector is None  # not needed: not read
        res = finetune(lib, opts, progress=seen.append)
    done = [p.info for p in seen if p.stage == "related" and p.done == 1]
    assert res.steps == 1 and done == [{"tracks": len(paths), "stored": len(paths) - 1, "k": 2}]


def test_at_most_a_quarter_of_the_other_tracks_are_related():
    from trainer.related import related_limit

    assert [related_limit(n) for n in (0, 1, 2, 4, 5, 16, 61, 134)] == [0, 0, 0, 0, 1, 3, 15, 33]


def test_mutual_pairs_are_each_others_nearest_and_serve_as_positives():
    # three tight groups far apart, and a loner (6) nearest to group 0 without being its members' nearest
    X = _unit(
        np.array(
            [
                [1, 0.02, 0, 0],
                [1, -0.02, 0, 0],
                [0, 1, 0.02, 0],
                [0, 1, -0.02, 0],
                [0, 0, 1, 0.02],
                [0, 0, 1, -0.02],
                [0.8, 0, 0, 0.6],
                [1, 0, 0.02, 0],
            ],
            dtype=np.float32,
        )
    )
    rp = nearest_pairs(X, np.arange(8), k=2)
    a, b = np.divmod(rp.mutual, rp.n)
    assert set(zip(a.tolist(), b.tolist())) >= {(0, 1), (2, 3), (4, 5)}
    assert 6 not in rp.partners  # its nearest do not have it among theirs
    assert np.isin(rp.mutual, rp.keys).all()  # mutual pairs are related: never each other's negative
    again = RelatedPairs.from_state(rp.state())
    assert np.array_equal(again.mutual, rp.mutual) and again.partners.keys() == rp.partners.keys()
    # the sampler takes a partner's crop as the positive about as often as asked, never a stranger's
    lengths, tracks = np.full(8, 400), np.arange(8)
    s = TripletSampler(lengths, tracks, 64, 32, related=rp, mutual_p=0.5)
    rng = np.random.default_rng(3)
    piece = np.repeat(np.arange(6), 200)
    b = s.batch(rng, piece, np.zeros(len(piece), np.int64))
    other = b.neighbour[0] != piece
    assert 0.4 < other.mean() < 0.6
    assert all(int(n) in rp.partners[int(p)] for p, n in zip(piece[other], b.neighbour[0][other]))
    assert (b.neighbour[1] <= 400 - 64).all()
    # off by default, and off without mutual pairs
    assert (
        TripletSampler(lengths, tracks, 64, 32, related=rp).batch(rng, piece, piece * 0).neighbour[0] == piece
    ).all()
