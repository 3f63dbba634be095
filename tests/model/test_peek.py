"""musicsim.model.peek reads a checkpoint's identity without torch, equal to torch's own."""

import pickle
import subprocess
import sys
import zipfile

import pytest

from musicsim.audio.features import FrontEnd
from musicsim.model import checkpoint, peek
from musicsim.model.resnet import ModelConfig, build_model


@pytest.mark.parametrize("pooling", ["mean", "multilevel"])
def test_the_checksum_without_torch_is_the_checksum_with_it(tmp_path, pooling):
    net = build_model(ModelConfig(width=4, embed_dim=16, pooling=pooling), seed=5)
    path = checkpoint.save_checkpoint(
        checkpoint.make_checkpoint(net, FrontEnd(), name="peeked", trained=False, optimizer={"step": 3}),
        tmp_path / "m.pt",
    )
    ident = peek.identity(path)
    loaded = checkpoint.load_model(path)
    assert (ident.name, ident.checksum, ident.trained) == (loaded.name, loaded.checksum, False)


def test_the_shipped_default_model():
    if not checkpoint.DEFAULT_RESOURCE.exists():
        pytest.skip("no shipped model in this checkout")
    assert peek.identity(checkpoint.DEFAULT_RESOURCE).checksum == checkpoint.default_model().checksum


def test_reading_the_identity_imports_no_torch():
    code = (
        "import sys; from musicsim import resources; from musicsim.model import peek; "
        "p = resources.default_model(); p.exists() and peek.identity(p); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_anything_else_is_refused(tmp_path):
    (tmp_path / "text.pt").write_text("not a zip")
    with pytest.raises(peek.PeekError):
        peek.identity(tmp_path / "text.pt")
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(evil, "w") as z:  # a pickle that would call os.system
        z.writestr("archive/data.pkl", b"cos\nsystem\n(S'true'\ntR.")
        z.writestr("archive/byteorder", "little")
    with pytest.raises(peek.PeekError, match="unexpected global"):
        peek.identity(evil)
    plain = tmp_path / "plain.pt"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"format": "something else"}))
        z.writestr("archive/byteorder", "little")
    with pytest.raises(peek.PeekError, match="not a musicsim checkpoint"):
        peek.identity(plain)
