"""The CUDA path: training, the mel front end and embedding on a GPU agree with the CPU.

Skipped where torch sees no CUDA device (CI, this project's development machine); run on a
machine with one by ``pytest -m gpu``.
"""

import numpy as np
import pytest
import torch

from musicsim.audio.features import FrontEnd, LogMel
from musicsim.jobs import CancelToken
from musicsim.model.checkpoint import load_model, read_checkpoint
from musicsim.model.embed import Embedder, device_name
from tests.trainer.test_training import _opts
from trainer.train import TrainOptions, train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("amp", ["auto", "fp16", "off"])
def test_cuda_tiny_run_learns(train_library, mel_cache_dir, tmp_path, amp):
    root, _ = train_library
    seen = []
    res = train(
        _opts(
            root, mel_cache_dir, tmp_path / "run", epochs=6, augment=True, margin=0.5, seed=6, amp=amp, device="cuda"
        ),
        progress=seen.append,
    )
    first, last = res.history[0], res.history[-1]
    print(amp, [(h["epoch"], round(h["val_loss"], 4), round(h["val_acc"], 3)) for h in res.history])
    assert last["val_loss"] < 0.7 * first["val_loss"], res.history
    assert last["val_acc"] > first["val_acc"], res.history
    card = read_checkpoint(res.model_path)["card"]
    want = {
        "off": "float32",
        "fp16": "float16 autocast",
        "auto": "bfloat16 autocast" if torch.cuda.is_bf16_supported() else "float16 autocast",
    }[amp]
    assert card["precision"] == want
    assert card["hardware"].startswith(device_name(torch.device("cuda", 0)))
    shown = {p.info["device"] for p in seen if p.stage == "train"}
    assert len(shown) == 1 and shown.pop().startswith("GPU: ")
    # weights come back float32 and on the CPU, usable by a machine without a GPU
    weights = read_checkpoint(res.model_path)["model"]
    assert all(v.device.type == "cpu" for v in weights.values())
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    m = load_model(res.model_path)
    assert torch.isfinite(m.model.embed(torch.randn(2, 1, 64, 64))).all()


def test_cuda_resume_after_cancel_continues_the_run(train_library, mel_cache_dir, tmp_path):
    """On CUDA a resumed run draws the same batches and learning rates, but cuDNN's kernels are
    not bit-reproducible: two uninterrupted runs already differ by rounding that training
    amplifies. So the resumed run must land as close to the uninterrupted one as a re-run
    does (a resume that lost the optimizer state or the sampler's position lands far off)."""
    root, _ = train_library
    variant = dict(epochs=2, mining="semihard", augment=True, device="cuda", amp="off")
    full = train(_opts(root, mel_cache_dir, tmp_path / "full", **variant))
    again = train(_opts(root, mel_cache_dir, tmp_path / "again", **variant))
    spe = read_checkpoint(full.checkpoint)["extra"]["steps_per_epoch"]
    token = CancelToken()
    stop_at = spe + 2

    def progress(p):
        if p.stage == "train" and p.done == stop_at:
            token.cancel()

    part = train(_opts(root, mel_cache_dir, tmp_path / "part", **variant), progress=progress, cancel=token)
    assert part.cancelled and part.steps == stop_at
    assert isinstance(read_checkpoint(part.checkpoint)["extra"]["rng"]["torch_cuda"], torch.Tensor)
    resumed = train(
        TrainOptions(resume=str(tmp_path / "part"), device="cuda", cache=str(mel_cache_dir), workers=1, amp="off")
    )
    assert resumed.steps == full.steps and not resumed.cancelled
    lr_full = {h["step"]: h.get("lr") for h in full.history}
    assert all(lr_full[h["step"]] == h.get("lr") for h in resumed.history if h["step"] in lr_full)
    assert resumed.history[-1]["step"] == full.history[-1]["step"]

    def flat(run):
        w = read_checkpoint(run.checkpoint)["model"]
        return torch.cat([v.flatten() for v in w.values() if v.is_floating_point()])

    a, b, c = flat(full), flat(again), flat(resumed)
    rerun, resume = float((a - b).norm() / a.norm()), float((a - c).norm() / a.norm())
    fresh = float(
        (a - flat(train(_opts(root, mel_cache_dir, tmp_path / "seed2", seed=2, **variant)))).norm() / a.norm()
    )
    print(f"relative weight difference: re-run {rerun:.2e}, resumed {resume:.2e}, another seed {fresh:.2e}")
    assert resume < max(5 * rerun, 1e-4) and resume < 0.2 * fresh


def test_gpu_log_mel_matches_cpu():
    fe = FrontEnd()
    rng = np.random.default_rng(0)
    wave = torch.from_numpy((0.3 * rng.standard_normal(fe.sr * 5)).astype(np.float32))
    cpu = LogMel(fe)(wave)
    gpu = LogMel(fe).to("cuda")(wave.to("cuda")).cpu()
    assert cpu.shape == gpu.shape
    assert (cpu - gpu).abs().max() < 0.05  # dB


def test_gpu_mel_cache_build_matches_cpu(train_library, tmp_path):
    from musicsim.melcache import MelCache

    paths = sorted(train_library[1])[:3]
    cpu, _ = MelCache(tmp_path / "cpu", FrontEnd()).build(paths, device="cpu", workers=1)
    gpu, failed = MelCache(tmp_path / "gpu", FrontEnd()).build(paths, device="cuda", workers=1)
    assert not failed and cpu.keys() == gpu.keys()
    for p in paths:
        a, b = cpu[p].mel.astype(np.float32), gpu[p].mel.astype(np.float32)  # all chunks' frames
        assert a.shape == b.shape and np.abs(a - b).max() < 0.1, p


def test_embedding_on_gpu_matches_cpu():
    from musicsim.model.checkpoint import default_model

    on_cpu = default_model()
    rng = np.random.default_rng(1)
    chunk = (0.2 * rng.standard_normal(on_cpu.frontend.sr * 20)).astype(np.float32)
    vc, sc, tc = Embedder(on_cpu, device="cpu").embed([chunk], [0.0])
    vg, sg, tg = Embedder(default_model(), device="cuda").embed([chunk], [0.0])  # its own copy: Embedder moves it
    assert np.array_equal(tc, tg) and sc.shape == sg.shape
    assert float(vc @ vg) / (np.linalg.norm(vc) * np.linalg.norm(vg)) > 0.999
    cos = (sc * sg).sum(1) / (np.linalg.norm(sc, axis=1) * np.linalg.norm(sg, axis=1))
    assert cos.min() > 0.999
