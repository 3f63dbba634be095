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
