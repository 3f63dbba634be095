"""Training on generated audio: learning, exact resume, cancel, checkpoints, CLI."""

import pytest
import torch

from musicsim.jobs import CancelToken
from musicsim.model.checkpoint import load_model, read_checkpoint
from musicsim.model.embed import device_name
from trainer.train import TrainOptions, _amp_dtype, cpu_bf16_native, train


def _opts(root, cache, out, **kw):
    base = dict(
        folders=[str(root)],
        init=None,
        cache=str(cache),
        out=str(out),
        width=8,
        embed_dim=32,
        segment_frames=64,
        batch_size=16,
        lr=3e-3,
        warmup_steps=5,
        val_fraction=0.25,
        val_triplets=96,
        window_seconds=4.0,
        workers=1,
        device="cpu",
        seed=1,
        augment=False,
    )
    base.update(kw)
    return TrainOptions(**base)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_tiny_run_learns(train_library, mel_cache_dir, tmp_path, amp):
    root, _ = train_library
    seen = []
    res = train(
        _opts(root, mel_cache_dir, tmp_path / "run", epochs=6, augment=True, margin=0.5, seed=6, amp=amp),
        progress=seen.append,
    )
    first, last = res.history[0], res.history[-1]
    assert first["step"] == 0 and last["epoch"] == 6
    print([(h["epoch"], round(h["val_loss"], 4), round(h["val_acc"], 3)) for h in res.history])
    assert last["val_loss"] < 0.7 * first["val_loss"], res.history
    assert last["val_acc"] > first["val_acc"], res.history
    assert (tmp_path / "run" / "log.csv").read_text().count("\n") == 8  # header + epochs 0..6
    assert "val triplet accuracy" in res.summary
    loaded = load_model(res.model_path)
    assert loaded.trained and loaded.config.width == 8 and loaded.frontend.segment_frames == 64
    assert loaded.metrics["val_acc"] == pytest.approx(last["val_acc"])
    card = read_checkpoint(res.model_path)["card"]
    assert card["precision"] == ("float32" if amp == "off" else "bfloat16 autocast")
    shown = {p.info["device"] for p in seen if p.stage == "train"}  # what the Training tab shows
    assert shown == {device_name(torch.device("cpu")) + ("" if amp == "off" else ", bfloat16 autocast")}
    # the weights stay float32 whatever the forward pass ran in
    assert all(
        v.dtype == torch.float32 for v in read_checkpoint(res.model_path)["model"].values() if v.is_floating_point()
    )


def test_precision_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert _amp_dtype(cpu, "off") is None and _amp_dtype(cuda, "off") is None
    assert _amp_dtype(cpu, "bf16") == torch.bfloat16
    assert _amp_dtype(cpu, "fp16") is None  # fp16 autocast is for CUDA only
    # auto: bf16 only where the CPU has it in hardware (elsewhere it is emulated and slower)
    assert _amp_dtype(cpu, "auto") == (torch.bfloat16 if cpu_bf16_native() else None)
    assert _amp_dtype(torch.device("mps"), "auto") is None
    assert _amp_dtype(cuda, "fp16") == torch.float16


def _weights(path):
    return read_checkpoint(path)["model"]


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_resume_after_cancel_mid_epoch_is_exact(train_library, mel_cache_dir, tmp_path, amp):
    root, _ = train_library
    variant = dict(epochs=2, mining="semihard", augment=True, head=32, pitch_shift=2, mix=0.3, similar_k=1, amp=amp)
    seen = []
    full = train(_opts(root, mel_cache_dir, tmp_path / "full", **variant), progress=seen.append)
    spe = read_checkpoint(full.checkpoint)["extra"]["steps_per_epoch"]
    # the related-tracks pass reports its start and its end; the GUI has a title for every stage
    from musicsim.gui.training import STAGE_TITLES

    related = [(p.done, p.total) for p in seen if p.stage == "related"]
    assert related == [(0, 0), (1, 1)] and {p.stage for p in seen} <= set(STAGE_TITLES)
    assert full.steps == 2 * spe and spe >= 4

    token = CancelToken()
    stop_at = spe + 2  # mid-way through epoch 2

    def progress(p):
        if p.stage == "train" and p.done == stop_at:
            token.cancel()

    part = train(_opts(root, mel_cache_dir, tmp_path / "part", **variant), progress=progress, cancel=token)
    assert part.cancelled and part.steps == stop_at and part.model_path is None
    # the checkpoint left by the cancel is usable as a model, and holds the training state
    ck = read_checkpoint(part.checkpoint)
    assert ck["step"] == stop_at and ck["optimizer"] is not None
    assert isinstance(ck["extra"]["rng"]["torch_cpu"], torch.Tensor)
    assert len(ck["extra"]["related"]["keys"]) > 0  # the resumed run uses the same related tracks
    m = load_model(part.checkpoint)
    assert m.model.embed(torch.randn(2, 1, 64, 64)).shape == (2, 32)
    assert m.model(torch.randn(2, 1, 64, 64)).shape == (2, m.config.segment_dim)

    resumed = train(
        TrainOptions(resume=str(tmp_path / "part"), device="cpu", cache=str(mel_cache_dir), workers=1, amp=amp)
    )  # the precision is the resuming command's choice, like the device
    assert resumed.steps == full.steps and not resumed.cancelled
    a, b = _weights(full.checkpoint), _weights(resumed.checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ha, hb = read_checkpoint(full.checkpoint)["extra"]["head"], read_checkpoint(resumed.checkpoint)["extra"]["head"]
    assert all(torch.equal(ha[k], hb[k]) for k in ha)
    # the optimizer state continued too
    oa, ob = read_checkpoint(full.checkpoint)["optimizer"], read_checkpoint(resumed.checkpoint)["optimizer"]
    for sa, sb in zip(oa["state"].values(), ob["state"].values()):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_step_and_time_bounds(train_library, mel_cache_dir, tmp_path):
    root, _ = train_library
    res = train(_opts(root, mel_cache_dir, tmp_path / "s", steps=3))
    assert res.steps == 3
    res = train(_opts(root, mel_cache_dir, tmp_path / "t", max_minutes=0.0))
    assert res.steps == 0 and res.model_path


def test_checkpoint_round_trip(train_library, mel_cache_dir, tmp_path):
    root, _ = train_library
    res = train(_opts(root, mel_cache_dir, tmp_path / "r", steps=2, name="roundtrip"))
    ck = read_checkpoint(res.checkpoint)  # weights_only=True inside
    assert ck["name"] == "roundtrip" and ck["step"] == 2
    assert ck["model_args"]["width"] == 8 and ck["frontend"]["segment_frames"] == 64
    assert ck["extra"]["options"]["batch_size"] == 16 and ck["extra"]["split"]["val"]
    exported = read_checkpoint(res.model_path)
    assert exported["optimizer"] is None and exported["card"]["steps"] == 2
    a, b = load_model(res.checkpoint), load_model(res.model_path)
    assert a.checksum == b.checksum
    x = torch.randn(3, 1, 64, 64)
    assert torch.allclose(a.model(x), b.model(x))
    # fine-tuning from the exported model keeps its architecture and front end
    ft = train(_opts(root, mel_cache_dir, tmp_path / "ft", init=res.model_path, steps=1, width=16))
    assert load_model(ft.model_path).config.width == 8


def test_recipe_defaults_depend_on_the_start(train_library, mel_cache_dir, tmp_path):
    """From scratch a neighbour starts within +-10 s, no track is related and every layer trains;
    fine-tuning takes it from anywhere in the track (+-10 min), keeps each track's 15 nearest
    tracks apart, takes 3 positives in 10 from a mutually nearest track and trains only the
    fourth stage and the embedding. Given values win, and the
    checkpoint records what the run used, so --resume keeps it."""
    from trainer.options import (
        FREEZE_FINETUNE,
        MUTUAL_POSITIVES_FINETUNE,
        SIMILAR_K_FINETUNE,
        WINDOW_SECONDS_FINETUNE,
        WINDOW_SECONDS_SCRATCH,
    )
    from trainer.setup import start_model

    assert (WINDOW_SECONDS_SCRATCH, WINDOW_SECONDS_FINETUNE) == (10.0, 600.0)
    assert (SIMILAR_K_FINETUNE, FREEZE_FINETUNE, MUTUAL_POSITIVES_FINETUNE) == (15, 3, 0.3)
    recipe = ("window_seconds", "similar_k", "freeze", "mutual_positives")

    def chosen(opts):
        return tuple(getattr(opts, k) for k in recipe)

    ft, start = start_model(TrainOptions(), None)  # the shipped model
    assert start.fine_tuning and chosen(ft) == (600.0, 15, 3, 0.3)
    scratch, start = start_model(TrainOptions(init=None, width=8, embed_dim=32), None)
    assert not start.fine_tuning and chosen(scratch) == (10.0, 0, 0, 0.0)
    given, _ = start_model(TrainOptions(window_seconds=4.0, similar_k=2, freeze=0, mutual_positives=0.0), None)
    assert chosen(given) == (4.0, 2, 0, 0.0)

    root, tracks = train_library
    src = train(_opts(root, mel_cache_dir, tmp_path / "src", steps=1, window_seconds=None))
    assert read_checkpoint(src.checkpoint)["extra"]["options"]["window_seconds"] == 10.0
    # 16 tracks: K = 15 would relate every pair and leave batch-all mining no negative, so at
    # most a quarter of the other tracks (3) are related, and the loss still has work to do
    seen = []
    res = train(
        _opts(
            root, mel_cache_dir, tmp_path / "ft", init=src.model_path, steps=2, window_seconds=None, val_fraction=0.0
        ),
        progress=seen.append,
    )
    opts = read_checkpoint(res.checkpoint)["extra"]["options"]
    assert res.steps == 2 and tuple(opts[k] for k in recipe) == (600.0, 15, 3, 0.3)
    assert [p.info["k"] for p in seen if p.stage == "related" and p.done == 1] == [3] and len(tracks) == 16
    assert res.metrics["train_loss"] > 0


def test_freeze_keeps_the_lower_stages_as_they_were(train_library, mel_cache_dir, tmp_path):
    root, _ = train_library
    src = train(_opts(root, mel_cache_dir, tmp_path / "src", steps=2)).model_path
    ft = train(_opts(root, mel_cache_dir, tmp_path / "ft", init=src, steps=3, freeze=2))
    assert read_checkpoint(ft.checkpoint)["extra"]["options"]["freeze"] == 2
    before, after = _weights(src), _weights(ft.model_path)
    # [2,2,2,2] blocks: stages 1-2 are layers.0-3; BatchNorm running statistics included
    lower = [
        k
        for k in before
        if k.split(".")[0] in ("in_norm", "stem") or (k.startswith("layers.") and int(k.split(".")[1]) < 4)
    ]
    upper = [k for k in before if k not in lower and not k.endswith("num_batches_tracked")]
    assert any("running_mean" in k for k in lower) and any(k.startswith("layers.3.") for k in lower)
    for k in lower:
        assert torch.equal(before[k], after[k]), k
    changed = [k for k in upper if not torch.equal(before[k], after[k])]
    assert len(changed) == len(upper), sorted(set(upper) - set(changed))


def test_cli_help_documents_every_option(capsys):
    from trainer.__main__ import build_parser, main

    text = build_parser().format_help()
    for opt in (
        "--db",
        "--from",
        "--scratch",
        "--cache",
        "--device",
        "--epochs",
        "--steps",
        "--max-minutes",
        "--resume",
        "--batch-size",
        "--lr",
        "--margin",
        "--window-seconds",
        "--mining",
        "--width",
        "--no-augment",
        "--norm-reg",
        "--no-reembed",
        "torchrun",
    ):
        assert opt in text
    for action in build_parser()._actions:
        assert action.help, action.dest
    assert "With no folders and no --db, python -m trainer fine-tunes your default library" in text
    # no arguments and no default library yet: a clear error, and nothing created
    from musicsim.paths import default_db

    assert main([]) == 2
    assert "no library at" in capsys.readouterr().err and not default_db().exists()
    with pytest.raises(SystemExit):
        main(["--mining", "nonsense"])


def test_cli_without_arguments_fine_tunes_the_default_library(family_library, capsys):
    """``python -m trainer`` alone: the library the app opens (under MUSICSIM_HOME) is fine-tuned
    from the shipped model, re-embedded with the new model, which is then judged and activated."""
    from musicsim.library import Library
    from musicsim.paths import default_db, models_dir
    from trainer.__main__ import main

    root, families = family_library
    with Library() as lib:  # the default library
        lib.scan([str(root)])
        old = lib.model_row.name
    assert default_db().exists()
    rc = main(
        [
            "--steps",
            "1",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--workers",
            "1",
            "--val-fraction",
            "0",
            "--similar-k",
            "2",
            "--name",
            "home-model",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "trained home-model: 1 steps" in out and f"re-embedded {len(families)} tracks" in out
    assert (models_dir(default_db()) / "home-model.pt").exists()
    assert (models_dir(default_db()) / "runs" / "home-model" / "last.pt").exists()
    with Library() as lib:
        names = [m[0] for m in lib.models()]
        assert "home-model" in names and old in names  # the previous model stays selectable
        activated = lib.model_row.name == "home-model"
        assert len(lib.embeddings()[0]) == len(families)
    assert ("is now active" in out) == activated and ("not activated" in out) != activated
    # `--resume` alone finds that run (it lives beside the default library) and continues it there
    assert main(["--resume", "--device", "cpu", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained home-model: 1 steps" in out and "re-embedded 0 tracks; model 'home-model'" in out


def test_cli_trains_on_folder(train_library, mel_cache_dir, tmp_path, capsys):
    from trainer.__main__ import main

    root, _ = train_library
    rc = main(
        [
            str(root),
            "--scratch",
            "--width",
            "8",
            "--segment-frames",
            "64",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--cache",
            str(mel_cache_dir),
            "--out",
            str(tmp_path / "cli"),
            "--device",
            "cpu",
            "--workers",
            "1",
            "--name",
            "cli-model",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "trained cli-model: 2 steps" in out
    assert (tmp_path / "cli" / "cli-model.pt").exists()
    card = read_checkpoint(tmp_path / "cli" / "cli-model.pt")["card"]
    assert "--steps 2" in card["recipe"]


def test_a_library_longer_than_the_budget_is_sampled_not_decoded_whole(train_library, tmp_path):
    """Tracks not cached yet are decoded only until their frames are twice the store budget."""
    from musicsim.audio.features import FrontEnd
    from musicsim.melcache import MelCache

    root, fams = train_library
    paths = sorted(fams)
    frames = 20.0 * 22050 / 512  # ~861 frames per 20-s track
    # serial and pooled decoding stop alike: 2,000 frames wanted -> 3 tracks, the rest left out
    for workers in (1, 2):
        cache = MelCache(tmp_path / f"c{workers}", FrontEnd())
        seen = []
        found, failed = cache.build(paths, workers=workers, max_frames=2000, progress=seen.append)
        assert not failed and 3 <= len(found) <= 3 + 2 * workers  # pooled: what was in flight finishes
        assert cache.left_out == len(paths) - len(found) and "left out" in seen[-1].current
        assert len(list((tmp_path / f"c{workers}").rglob("*.json"))) == len(found)  # only those written
        # cached tracks always count; with the budget full nothing more is decoded
        again, _ = cache.build(paths, workers=workers, max_frames=2000)
        assert set(again) == set(found) and cache.left_out == len(paths) - len(found)

    # a training run on that library: a budget of ~1.5 tracks decodes ~3 of the 16 and trains on them
    gb = 1300 * 64 * 2 / 1e9
    res = train(_opts(root, tmp_path / "run-cache", tmp_path / "run", steps=2, memory_gb=gb))
    split = read_checkpoint(res.checkpoint)["extra"]["split"]
    used = split["train"] + split["val"]
    assert 2 <= len(used) <= 4 and len(used) * frames >= 2 * 1300
    assert len(list((tmp_path / "run-cache").rglob("*.json"))) == len(used)
    # a larger budget decodes the rest
    more = train(_opts(root, tmp_path / "run-cache", tmp_path / "run2", steps=1, memory_gb=100 * gb))
    split = read_checkpoint(more.checkpoint)["extra"]["split"]
    assert len(split["train"] + split["val"]) == len(paths)
