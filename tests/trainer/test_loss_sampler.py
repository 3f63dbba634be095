import numpy as np
import pytest
import torch

from trainer.augment import Augment
from trainer.loss import batch_triplet_loss, norm_penalty, pairwise_sq_dist, select_negatives, triplet_loss
from trainer.sampling import TripletSampler, rng_for, split_tracks
from trainer.segments import SegmentStore

# --- loss on hand-made vectors ----------------------------------------------------------------


def test_triplet_loss_values():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    n = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # d(a,n) = 2, 0, 0
    d = torch.tensor([[-1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # d(a,d) = 4, 2, 0
    per = triplet_loss(a, n, d, margin=0.5, reduction="none")
    assert torch.allclose(per, torch.tensor([0.0, 0.0, 0.5]))
    assert triplet_loss(a, n, d, margin=3.0).item() == pytest.approx((1.0 + 1.0 + 3.0) / 3)
    assert triplet_loss(a, n, d, margin=0.5, reduction="sum").item() == pytest.approx(0.5)


def test_norm_penalty_is_tile2vec_regulariser():
    a = torch.tensor([[3.0, 4.0]])
    n = torch.tensor([[0.0, 2.0]])
    d = torch.tensor([[1.0, 0.0]])
    assert norm_penalty(a, n, d).item() == pytest.approx(5 + 2 + 1)
    loss, _ = batch_triplet_loss(a, n, d, torch.tensor([0]), torch.tensor([1]), margin=0.0, mining="none", norm_reg=0.1)
    base = max(0.0, 13 - 13 + 0.0)  # |a-n|^2 = 9+4 = 13, |a-d|^2 = 4+16 = 20
    assert loss.item() == pytest.approx(base + 0.1 * 8)


def test_pairwise_matches_direct():
    x, y = torch.randn(5, 3), torch.randn(4, 3)
    direct = ((x[:, None] - y[None]) ** 2).sum(-1)
    assert torch.allclose(pairwise_sq_dist(x, y), direct, atol=1e-5)


def test_semihard_selection():
    # anchor-neighbour distance 1.0; candidates at 0.5 (harder), 1.2 (semi-hard), 3.0 (easy), 1.1 (same track)
    d_ap = torch.tensor([1.0])
    d_cand = torch.tensor([[0.5, 1.2, 3.0, 1.1]])
    valid = torch.tensor([[True, True, True, False]])
    assert select_negatives(d_ap, d_cand, valid, "semihard").item() == 1
    assert select_negatives(d_ap, d_cand, valid, "hard").item() == 0
    # no candidate farther than the neighbour: the farthest valid one (as FaceNet / TF do)
    d_cand2 = torch.tensor([[0.5, 0.7, 0.2, 5.0]])
    assert select_negatives(d_ap, d_cand2, valid, "semihard").item() == 1


def test_batch_loss_modes_and_mining_uses_other_tracks_only():
    torch.manual_seed(0)
    a, n, d = (torch.nn.functional.normalize(torch.randn(6, 8), dim=1) for _ in range(3))
    ta = torch.tensor([0, 0, 1, 1, 2, 2])
    td = torch.tensor([1, 2, 0, 2, 0, 1])
    plain, st = batch_triplet_loss(a, n, d, ta, td, margin=0.5, mining="none")
    assert plain.item() == pytest.approx(triplet_loss(a, n, d, margin=0.5).item())
    for mode in ("semihard", "hard", "all"):
        loss, st = batch_triplet_loss(a, n, d, ta, td, margin=0.5, mining=mode)
        assert torch.isfinite(loss) and loss.item() >= 0
    # identical embeddings within a track and far apart across tracks: zero loss in every mode
    e = torch.eye(3)[ta] * 1.0
    for mode in ("none", "semihard", "hard", "all"):
        loss, st = batch_triplet_loss(e, e, torch.eye(3)[td], ta, td, margin=0.5, mining=mode)
        assert loss.item() == pytest.approx(0.0) and st["acc"] == 1.0
    with pytest.raises(ValueError):
        batch_triplet_loss(a, n, d, ta, td, mining="bogus")


def test_nce_loss_values():
    # one anchor: its neighbour at squared distance 0.8, the distant segment (another track) at 4;
    # the anchor's own segments are not negatives, so the loss is softplus((0.8 - 4) / (2 T))
    a = torch.tensor([[1.0, 0.0]])
    n = torch.tensor([[0.6, 0.8]])
    d = torch.tensor([[-1.0, 0.0]])
    for T in (1.0, 0.25):
        loss, st = batch_triplet_loss(a, n, d, torch.tensor([0]), torch.tensor([1]), mining="nce", temperature=T)
        assert loss.item() == pytest.approx(float(np.log1p(np.exp((0.8 - 4.0) / (2 * T)))), rel=1e-4)
        assert st["acc"] == 1.0
    # two anchors of different tracks: each sees the other's three segments as negatives
    a2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    n2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    loss, _ = batch_triplet_loss(a2, n2, d2, torch.tensor([0, 1]), torch.tensor([1, 0]), mining="nce", temperature=1.0)
    # per anchor: positive at 0; negatives: the other track's anchor and neighbour, and its own
    # distant segment (of the other track), all at 2; the other anchor's distant segment is its own track
    expect = np.log1p(3 * np.exp(-1.0))
    assert loss.item() == pytest.approx(expect, rel=1e-5)


# --- sampler invariants -----------------------------------------------------------------------


def _sampler(W=40, F=32):
    lengths = np.array([500, 90, 20, 300, 1000, 64])
    piece_track = np.array([0, 0, 1, 2, 3, 4])  # track 0 has two pieces (windows)
    return TripletSampler(lengths, piece_track, F, W), lengths, piece_track


def test_neighbours_are_near_and_same_track_distant_other_track():
    s, lengths, ptrack = _sampler()
    rng = rng_for(1, 2, 3)
    for _ in range(20):
        piece, start = s.epoch_anchors(rng)
        b = s.batch(rng, piece, start)
        ap, ast = b.anchor
        npc, nst = b.neighbour
        dp, dst = b.distant
        assert (npc == ap).all()  # same piece, so same track
        assert (np.abs(nst - ast) <= s.W).all()
        movable = lengths[ap] > s.F + 1
        assert (nst[movable] != ast[movable]).all()  # "another" segment where the piece allows one
        assert (ptrack[dp] != ptrack[ap]).all()  # distant: a different track
        for p, st in ((ap, ast), (npc, nst), (dp, dst)):
            assert (st >= 0).all() and (st <= np.maximum(lengths[p] - s.F, 0)).all()
        assert (b.track_a == ptrack[ap]).all() and (b.track_d == ptrack[dp]).all()


def test_epoch_visits_every_grid_segment_once():
    s, lengths, _ = _sampler()
    piece, start = s.epoch_anchors(rng_for(0))
    assert len(piece) == s.n_segments == sum(max(1, n // s.F) for n in lengths)
    counts = np.bincount(piece, minlength=len(lengths))
    assert (counts == np.maximum(1, lengths // s.F)).all()


def test_sampling_is_reproducible_from_keys():
    s, _, _ = _sampler()
    p1, s1 = s.epoch_anchors(rng_for(5, 1))
    p2, s2 = s.epoch_anchors(rng_for(5, 1))
    p3, _ = s.epoch_anchors(rng_for(5, 2))
    assert (p1 == p2).all() and (s1 == s2).all() and not (p1 == p3).all()


def test_distant_pool_and_single_track_error():
    s = TripletSampler(np.array([100, 100]), np.array([0, 0]), 32, 10)
    with pytest.raises(ValueError):
        s.distant(rng_for(0), np.array([0, 0]))


def test_store_crops_and_wrap():
    mel = torch.arange(2 * 10, dtype=torch.float16).reshape(2, 10)
    store = SegmentStore(mel, np.array([0, 6]), np.array([6, 4]), np.array([0, 1]), ["a", "b"])
    x = store.crops(np.array([0, 1]), np.array([1, 0]), 5)
    assert x.shape == (2, 1, 2, 5) and x.dtype == torch.float32
    assert x[0, 0, 0].tolist() == [1, 2, 3, 4, 5]
    assert x[1, 0, 0].tolist() == [6, 7, 8, 9, 6]  # a 4-frame piece wraps around


def test_augment_keeps_shape_and_is_keyed():
    x = torch.randn(4, 1, 64, 32)
    y1 = Augment()(x, rng_for(3))
    y2 = Augment()(x, rng_for(3))
    assert y1.shape == x.shape and torch.equal(y1, y2) and not torch.equal(y1, x)


def test_split_is_stable_and_disjoint():
    paths = [f"/m/t{i}.mp3" for i in range(20)]
    tr, va = split_tracks(paths, 0.2, 0)
    assert set(tr).isdisjoint(va) and len(va) == 4 and sorted(tr + va) == sorted(paths)
    assert split_tracks(list(reversed(paths)), 0.2, 0) == (tr, va)
