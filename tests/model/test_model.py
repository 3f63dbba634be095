import pickle

import numpy as np
import pytest
import torch

from musicsim.audio.features import FrontEnd
from musicsim.errors import CheckpointError, ModelMismatch
from musicsim.model.checkpoint import load_model, make_checkpoint, read_checkpoint, save_checkpoint, untrained_model
from musicsim.model.embed import Embedder, best_device, track_vector
from musicsim.model.resnet import ModelConfig, build_model


def test_resnet_shapes_and_unit_norm():
    cfg = ModelConfig(width=8, embed_dim=32)
    m = build_model(cfg, seed=1).eval()
    x = torch.randn(3, 1, 64, 128)
    y = m(x)
    assert y.shape == (3, 32)
    assert torch.allclose(y.norm(dim=1), torch.ones(3), atol=1e-5)
    # ResNet18 layout: 4 stages of 2 basic blocks
    assert len(m.layers) == 8


def test_seeded_untrained_is_reproducible():
    a, b = untrained_model(), untrained_model()
    assert a.checksum == b.checksum and not a.trained


def test_checkpoint_round_trip(tmp_path):
    cfg, fe = ModelConfig(width=8, embed_dim=16), FrontEnd(n_mels=40)
    m = build_model(cfg, seed=3).eval()
    ck = make_checkpoint(m, fe, name="t", step=7, metrics={"acc": 0.9}, optimizer={"lr": 0.1})
    path = save_checkpoint(ck, tmp_path / "m.pt")
    loaded = load_model(path)
    assert loaded.config == cfg and loaded.frontend == fe and loaded.name == "t"
    assert read_checkpoint(path)["step"] == 7
    x = torch.randn(2, 1, 40, 128)
    assert torch.allclose(loaded.model(x), m(x), atol=1e-6)


# torch's weights-only unpickler warns about the hand-made pickle's protocol before refusing it
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_code_carrying_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "musicsim-checkpoint", "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a safe musicsim checkpoint"):
        load_model(path)
    (tmp_path / "junk.pt").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "junk.pt")


def test_mismatched_weights_are_refused(tmp_path):
    m = build_model(ModelConfig(width=8, embed_dim=16), seed=0)
    ck = make_checkpoint(m, FrontEnd(), name="x")
    ck["model_args"]["width"] = 16
    save_checkpoint(ck, tmp_path / "x.pt")
    with pytest.raises(ModelMismatch):
        load_model(tmp_path / "x.pt")


def test_embedder_track_vector():
    loaded = untrained_model(ModelConfig(width=8, embed_dim=16))
    emb = Embedder(loaded, device="cpu")
    sr = loaded.frontend.sr
    chunk = np.random.default_rng(0).standard_normal(sr * 7).astype(np.float32) * 0.1
    vec, segs, starts = emb.embed([chunk, chunk[: sr * 2]], [0.0, 60.0])
    assert segs.shape[1] == 16 and len(starts) == len(segs)
    assert starts[0] == 0.0 and starts[-1] == pytest.approx(60.0)
    assert np.isclose(np.linalg.norm(vec), 1.0, atol=1e-5)
    assert np.allclose(vec, track_vector(segs))
    assert best_device("cpu").type == "cpu"


def test_embedder_leaves_the_scan_workers_their_cores(monkeypatch):
    import os

    import torch

    emb = Embedder(untrained_model(ModelConfig(width=8, embed_dim=16)), device="cpu")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    before = torch.get_num_threads()
    torch.set_num_threads(8)
    try:
        with emb.sharing_cores(6):
            assert torch.get_num_threads() == 2
        with emb.sharing_cores(8):
            assert torch.get_num_threads() == 1  # never none
        assert torch.get_num_threads() == 8
    finally:
        torch.set_num_threads(before)


def test_meanstd_pooling_config_checksum_and_vectors(tmp_path):
    cfg = ModelConfig(width=8, embed_dim=16, pooling="meanstd")
    assert cfg.track_dim == 32 and ModelConfig(width=8, embed_dim=16).track_dim == 16
    with pytest.raises(ModelMismatch):
        ModelConfig(pooling="max")
    with pytest.raises(ModelMismatch):
        ModelConfig.from_dict({"width": 8, "pooling": "median"})
    # same weights, other pooling: other track vectors, so another checksum (another index);
    # a mean-pooled model keeps the checksum of its weights (older checkpoints lack the field)
    net = build_model(ModelConfig(width=8, embed_dim=16), seed=3)
    mean_ck = make_checkpoint(net, FrontEnd(), name="m")
    old = dict(mean_ck, model_args={k: v for k, v in mean_ck["model_args"].items() if k != "pooling"})
    save_checkpoint(old, tmp_path / "old.pt")
    net.cfg = cfg
    save_checkpoint(make_checkpoint(net, FrontEnd(), name="ms"), tmp_path / "ms.pt")
    a, b = load_model(tmp_path / "old.pt"), load_model(tmp_path / "ms.pt")
    assert a.config.pooling == "mean" and b.config.pooling == "meanstd"
    assert a.checksum != b.checksum
    sr = a.frontend.sr
    chunk = np.random.default_rng(1).standard_normal(sr * 9).astype(np.float32) * 0.1
    va, segs_a, _ = Embedder(a, device="cpu").embed([chunk], [0.0])
    vb, segs_b, _ = Embedder(b, device="cpu").embed([chunk], [0.0])
    assert np.allclose(segs_a, segs_b)
    assert va.shape == (16,) and vb.shape == (32,) and np.isclose(np.linalg.norm(vb), 1.0, atol=1e-5)
    # the first half points along the mean, the second is the spread of the segments (weight 2)
    assert np.allclose(vb[:16] / np.linalg.norm(vb[:16]), va, atol=1e-5)
    assert np.allclose(vb[16:] / np.linalg.norm(vb[:16]), 2.0 * segs_a.std(axis=0), atol=1e-4)


def _two_stage_refused_then_built(refused: ModelConfig, built: ModelConfig):
    """A two-stage network cannot have ``refused``'s pooling; ``built``'s seeded network and an input."""
    with pytest.raises(ModelMismatch):
        ModelConfig(width=4, blocks=(2, 2), pooling=refused.pooling)
    return build_model(built, seed=5).eval(), torch.randn(3, 1, 64, 128)


def test_multilevel_descriptor_holds_embedding_and_third_and_second_stage_texture():
    cfg = ModelConfig(width=4, embed_dim=16, pooling="multilevel")
    assert cfg.descriptor_parts[1] == 2 * 16 and cfg.segment_dim == 16 + 32 and cfg.track_dim == 2 * (16 + 32)
    with pytest.raises(ModelMismatch):
        ModelConfig(width=4, blocks=(2, 2), pooling="multilevel")
    cfg3 = ModelConfig(width=4, embed_dim=16, pooling="multilevel3")
    assert cfg3.parts == (16, 32, 16) and cfg3.segment_dim == 64 and cfg3.track_dim == 128
    assert cfg.descriptor_parts == cfg3.descriptor_parts == cfg3.parts
    net, x = _two_stage_refused_then_built(cfg3, cfg)
    with torch.no_grad():
        d = net(x)
        assert d.shape == (3, cfg.segment_dim)
        full = net.descriptor(x)
        assert full.shape == (3, 64) and torch.allclose(d, full[:, :48])
        assert torch.allclose(d[:, :16], net.embed(x), atol=1e-6)  # what the loss trains
        # the texture parts: each channel's mean and spread over time and frequency after
        # stage 3, then after stage 2
        h = net.stem(net.in_norm(x))
        for i, block in enumerate(net.layers):
            h = block(h)
            if i == 3:
                assert h.shape[1] == 8
                assert torch.allclose(full[:, 48:56], h.mean((2, 3)), atol=1e-5)
                assert torch.allclose(full[:, 56:], h.std((2, 3)), atol=1e-5)
            if i == 5:
                assert h.shape[1] == 16
                assert torch.allclose(d[:, 16:32], h.mean((2, 3)), atol=1e-5)
                assert torch.allclose(d[:, 32:], h.std((2, 3)), atol=1e-5)
        net.cfg = cfg3  # a three-level model stores the whole descriptor
        assert torch.allclose(net(x), full)


def test_multiband_descriptor_takes_texture_statistics_in_each_half_of_the_frequency_axis():
    cfg = ModelConfig(width=4, embed_dim=16, pooling="multiband")
    # the embedding, then stages 3, 2 and 1: 2 statistics x channels x 2 bands
    assert cfg.bands == 2 and cfg.parts == cfg.descriptor_parts == (16, 64, 32, 16)
    assert cfg.segment_dim == 128 and cfg.track_dim == 256
    assert ModelConfig(width=4, embed_dim=16, pooling="multilevel3").bands == 1
    net, x = _two_stage_refused_then_built(cfg, cfg)
    with torch.no_grad():
        d = net(x)
        assert d.shape == (3, 128) and torch.allclose(d, net.descriptor(x))
        assert torch.allclose(d[:, :16], net.embed(x), atol=1e-6)
        h = net.stem(net.in_norm(x))
        at = {5: (16, 80), 3: (80, 112), 1: (112, 128)}  # last block of stage 3, 2, 1 -> its part
        for i, block in enumerate(net.layers):
            h = block(h)
            if i in at:
                a, b = at[i]
                rows = h.shape[2]
                low, high = h[:, :, : rows // 2], h[:, :, rows // 2 :]
                want = torch.cat([low.mean((2, 3)), low.std((2, 3)), high.mean((2, 3)), high.std((2, 3))], 1)
                assert torch.allclose(d[:, a:b], want, atol=1e-5), i
        # the same network's statistics over all frequencies (a three-level descriptor)
        net.cfg = ModelConfig(width=4, embed_dim=16, pooling="multilevel3")
        one = net(x)
        assert one.shape == (3, 64) and torch.allclose(one[:, :16], d[:, :16])
        assert not torch.allclose(one[:, 16:48], d[:, 16:48])
        # a band never comes out empty, even when a stage has fewer rows than bands
        net.cfg = cfg
        tiny = net(torch.randn(2, 1, 8, 16))
        assert tiny.shape == (2, 128) and torch.isfinite(tiny).all()


def test_multilevel_track_vector_joins_two_pooled_parts(tmp_path):
    net = build_model(ModelConfig(width=4, embed_dim=16, pooling="meanstd"), seed=2)
    save_checkpoint(make_checkpoint(net, FrontEnd(), name="ms"), tmp_path / "ms.pt")
    net.cfg = ModelConfig(width=4, embed_dim=16, pooling="multilevel")
    save_checkpoint(make_checkpoint(net, FrontEnd(), name="ml"), tmp_path / "ml.pt")
    ms, ml = load_model(tmp_path / "ms.pt"), load_model(tmp_path / "ml.pt")
    assert ml.config.pooling == "multilevel" and ms.checksum != ml.checksum  # another index
    sr = ms.frontend.sr
    chunk = np.random.default_rng(4).standard_normal(sr * 9).astype(np.float32) * 0.1
    v_ms, segs_ms, _ = Embedder(ms, device="cpu").embed([chunk], [0.0])
    v_ml, segs_ml, _ = Embedder(ml, device="cpu").embed([chunk], [0.0])
    assert segs_ml.shape[1] == 48 and np.allclose(segs_ml[:, :16], segs_ms, atol=1e-5)
    assert v_ml.shape == (96,) and np.isclose(np.linalg.norm(v_ml), 1.0, atol=1e-5)
    # first half: the embedding pooled as a mean+std model pools it; second: the texture
    # statistics pooled the same way; equal weight
    assert np.allclose(v_ml[:32] * np.sqrt(2), v_ms, atol=1e-5)
    assert np.isclose(np.linalg.norm(v_ml[32:]), np.sqrt(0.5), atol=1e-5)
    assert np.allclose(v_ml[32:] * np.sqrt(2), track_vector(segs_ml[:, 16:], "meanstd"), atol=1e-5)
    with pytest.raises(ValueError):
        track_vector(segs_ml, "multilevel")  # the split must be known
