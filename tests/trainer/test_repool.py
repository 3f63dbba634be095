"""Re-pooling a checkpoint keeps its weights and changes only how track vectors are made."""

import torch

from musicsim.audio.features import FrontEnd
from musicsim.model.checkpoint import load_model, make_checkpoint, save_checkpoint
from musicsim.model.resnet import ModelConfig, build_model
from trainer.repool import main


def test_repool_keeps_weights_and_records_itself(tmp_path, capsys):
    net = build_model(ModelConfig(width=4, embed_dim=16, pooling="meanstd"), seed=9)
    save_checkpoint(make_checkpoint(net, FrontEnd(), name="base", card={"recipe": "x"}), tmp_path / "a.pt")
    assert main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--pooling", "multilevel", "--name", "base-ml"]) == 0
    a, b = load_model(tmp_path / "a.pt"), load_model(tmp_path / "b.pt")
    assert b.name == "base-ml" and b.config.pooling == "multilevel" and a.checksum != b.checksum
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert b.card["recipe"] == "x"
    assert b.card["repooled"] == {
        "from": "base",
        "checksum_from": a.checksum,
        "pooling_from": "meanstd",
        "pooling": "multilevel",
    }
    assert "wrote" in capsys.readouterr().out


def test_repool_refuses_a_bad_source_in_one_line(tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main([str(tmp_path / "bad.pt"), str(tmp_path / "out.pt"), "--pooling", "mean"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.pt" in err
    assert not (tmp_path / "out.pt").exists()
    # a network with too few stages for texture statistics is refused before anything is written
    small = build_model(ModelConfig(width=4, embed_dim=8, blocks=(1, 1)), seed=1)
    save_checkpoint(make_checkpoint(small, FrontEnd(), name="small"), tmp_path / "small.pt")
    assert main([str(tmp_path / "small.pt"), str(tmp_path / "out.pt"), "--pooling", "multilevel"]) == 1
    assert "three stages" in capsys.readouterr().err and not (tmp_path / "out.pt").exists()
