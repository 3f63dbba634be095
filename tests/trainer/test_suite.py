"""The leave-one-library-out suite on two small generated libraries (a few fine-tune steps)."""

from __future__ import annotations

import json
from pathlib import Path

import mutagen
import numpy as np
import pytest
import torch

from trainer.evaluate import knn_from_distances
from trainer.suite import fine_tune, flat_copy, format_suite, main, run_suite, suite_libraries


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    from tests.fixtures.generate import make_library

    root = tmp_path_factory.mktemp("suite") / "SUITE"
    for i, name in enumerate(("lib-a", "lib-b")):
        make_library(root / name, per_family=3, seconds=8.0, formats=(".ogg", ".mp3") if i == 0 else (".mp3", ".ogg"))
    (root / "notes").mkdir()  # a folder without labelled music is not a library
    (root / "notes" / "readme.txt").write_text("not music")
    return root


def test_flat_copy_hides_labels_names_and_tags(suite, tmp_path):
    copies = flat_copy(suite / "lib-a", tmp_path / "flat")
    assert len(copies) == 12 and {p.parent for p in copies} == {tmp_path / "flat"}
    families = ("sine", "noise", "chord", "clicks")
    assert not any(f in p.name.lower() for p in copies for f in families)
    assert all(not (mutagen.File(p).tags or {}) for p in copies)  # the copies lost their tags
    originals = sorted((suite / "lib-a").rglob("*.mp3"))
    assert originals and all(mutagen.File(p, easy=True).get("genre") for p in originals)  # untouched


def test_knn_from_distances():
    labels = np.array(["a", "a", "b", "b"])
    D = np.array([[0, 1, 5, 5], [1, 0, 5, 5], [5, 5, 0, 1], [5, 9, 1, 0]], float)
    assert knn_from_distances(D, labels, 1, np.ones(4, bool)) == (1.0, 1.0)
    assert knn_from_distances(D, labels, 3, np.ones(4, bool))[0] == pytest.approx(1 / 3)


def test_suite_fine_tunes_each_library_and_averages(suite, tmp_path, capsys):
    assert [p.name for p in suite_libraries(suite)] == ["lib-a", "lib-b"]
    kw = dict(work=tmp_path / "work", minutes=None, steps=2, threads=1, seeds=1, cache=str(tmp_path / "cache"))
    res = run_suite(suite, workers=1, musly=False, **kw)
    assert set(res["libraries"]) == {"lib-a", "lib-b"}
    for lib in res["libraries"].values():
        assert lib["tracks"] == 12 and lib["labels"] == {"chord": 3, "clicks": 3, "noise": 3, "sine": 3}
        assert lib["finetune"]["steps"] == 2
        assert set(lib["rows"]) == {"default", "fine-tuned", "MFCC mean/std", "untrained network"}
        for row in lib["rows"].values():
            assert 0.0 <= row["p@5"] <= 1.0 and 0.0 <= row["1nn"] <= 1.0
    libs = list(res["libraries"].values())
    for row in ("default", "fine-tuned", "MFCC mean/std"):
        for m in ("p@5", "1nn", "nmi"):
            assert res["mean"][row][m] == pytest.approx(np.mean([lib["rows"][row][m] for lib in libs]))
    assert libs[0]["finetune"]["model"] != libs[1]["finetune"]["model"]
    table = format_suite(res)
    assert "lib-a" in table and "lib-b" in table and "fine-tune gain over the default" in table
    assert table.count("mean ") >= 1

    # the command, run again: it finds the finished fine-tunes in the work folder and does not train again
    stamps = {name: lib["finetune"]["seconds"] for name, lib in res["libraries"].items()}
    from musicsim.model.checkpoint import read_checkpoint
    from musicsim.resources import default_model

    start = read_checkpoint(str(default_model()))["model"]
    plain = read_checkpoint(res["libraries"]["lib-a"]["finetune"]["model"])["model"]
    args = [str(suite), "--steps", "2", "--threads", "1", "--seeds", "1", "--workers", "1", "--no-musly"]
    args += ["--work", str(kw["work"]), "--cache", kw["cache"], "--json", str(tmp_path / "suite.json")]
    assert main(args) == 0
    assert "fine-tune gain over the default" in capsys.readouterr().out
    again = json.loads((tmp_path / "suite.json").read_text())
    assert {name: lib["finetune"]["seconds"] for name, lib in again["libraries"].items()} == stamps
    assert again["mean"]["default"]["p@5"] == pytest.approx(res["mean"]["default"]["p@5"])

    # another recipe is a new fine-tune, recorded with the result (and shown in the table)
    args2 = [*args[:-2], "--json", str(tmp_path / "suite2.json"), "--until-plateau", "--mutual-positives", "0.3"]
    more = ["--freeze", "0", "--mining", "nce", "--pitch-shift", "2", "--mix", "0.3", "--seed", "3", "--similar-k", "1"]
    assert main([*args2, *more]) == 0
    out = capsys.readouterr().out
    heading = "until it stops improving, at most 2 steps, similar k 1, mutual positives 0.3, freeze 0, mining nce"
    assert heading + ", pitch shift 2, mix 0.3, seed 3" in out
    third = json.loads((tmp_path / "suite2.json").read_text())
    assert third["recipe"] == {
        "until_plateau": True,
        "similar_k": 1,
        "mutual_positives": 0.3,
        "freeze": 0,
        "mining": "nce",
        "pitch_shift": 2,
        "mix": 0.3,
        "seed": 3,
    }
    tuned_run = Path(third["libraries"]["lib-a"]["finetune"]["model"]).parent
    tuned_opts = read_checkpoint(str(tuned_run / "last.pt"))["extra"]["options"]
    assert tuned_opts["seed"] == 3 and tuned_opts["mining"] == "nce"
    assert tuned_opts["pitch_shift"] == 2 and tuned_opts["mix"] == 0.3 and tuned_opts["similar_k"] == 1
    # the options are the trainer's: a stage the network does not have is refused before any work
    with pytest.raises(SystemExit):
        main([*args2, "--freeze", "5"])
    assert "invalid choice: 5" in capsys.readouterr().err
    for name, lib in third["libraries"].items():
        assert lib["finetune"]["recipe"] == third["recipe"] and lib["finetune"]["seconds"] != stamps[name]
    # the plain fine-tunes kept the input norm, the stem and the first three stages as the
    # default has them (the trainer's --freeze 3) and trained the rest; --freeze 0 reached the
    # fine-tunes and trained every layer
    assert res["libraries"]["lib-a"]["finetune"]["recipe"] == {}
    assert res["libraries"]["lib-a"]["finetune"]["trained_with"]["freeze"] == 3
    tuned = read_checkpoint(third["libraries"]["lib-a"]["finetune"]["model"])["model"]
    lower = [k for k in start if k.startswith(("in_norm.", "stem.", "layers.0.")) and start[k].is_floating_point()]
    assert all(torch.equal(start[k], plain[k]) for k in lower)
    assert not all(torch.equal(start[k], tuned[k]) for k in lower)
    for model in (plain, tuned):
        assert not all(torch.equal(start[k], model[k]) for k in start if k.startswith("proj."))


def test_a_finished_fine_tune_is_reused_only_with_the_same_options_resolved(suite, tmp_path, monkeypatch):
    from musicsim.model.checkpoint import model_from_checkpoint, read_checkpoint
    from musicsim.resources import default_model
    from trainer import options

    flat, run = tmp_path / "flat", tmp_path / "run"
    flat_copy(suite / "lib-a", flat)
    kw = dict(minutes=None, steps=2, threads=1, cache=str(tmp_path / "cache"))
    first = fine_tune(flat, run, **kw)
    used = first["trained_with"]
    assert used["freeze"] == options.FREEZE_FINETUNE and used["mutual_positives"] == options.MUTUAL_POSITIVES_FINETUNE
    assert used["lr"] == options.LR_FINETUNE and used["steps"] == 2 and used["threads"] == 1
    assert used["start_checksum"] == model_from_checkpoint(read_checkpoint(str(default_model()))).checksum
    assert fine_tune(flat, run, **kw)["seconds"] == first["seconds"]
    # the defaults named explicitly are the same recipe: reused
    same = {"freeze": options.FREEZE_FINETUNE, "mutual_positives": options.MUTUAL_POSITIVES_FINETUNE}
    assert fine_tune(flat, run, recipe=same, **kw)["seconds"] == first["seconds"]

    # a fine-tune default that changes: the run from before it is another recipe, trained again
    monkeypatch.setattr(options, "MUTUAL_POSITIVES_FINETUNE", 0.0)
    second = fine_tune(flat, run, **kw)
    assert second["seconds"] != first["seconds"] and second["trained_with"]["mutual_positives"] == 0.0
    assert read_checkpoint(str(Path(second["model"]).parent / "last.pt"))["extra"]["options"]["mutual_positives"] == 0.0
    # a record from before the resolved options were kept is not reused either
    done = run / "suite-finetune.json"
    rec = json.loads(done.read_text())
    del rec["trained_with"]
    done.write_text(json.dumps(rec))
    assert fine_tune(flat, run, **kw)["seconds"] != second["seconds"]


def test_a_candidate_default_is_judged_only_on_libraries_it_never_trained_on(suite, tmp_path, capsys):
    from tests.trainer.test_training import _opts
    from trainer.suite import trained_on
    from trainer.train import train

    cache = tmp_path / "cache"
    cand = train(_opts(suite / "lib-a", cache, tmp_path / "cand", steps=2, segment_frames=128)).model_path
    assert trained_on(cand, suite / "lib-a") == str((suite / "lib-a").absolute())
    assert trained_on(cand, suite / "lib-b") is None
    kw = dict(work=tmp_path / "work", minutes=None, steps=2, threads=1, seeds=1, cache=str(cache), workers=1)
    with pytest.raises(ValueError, match="trained on .*lib-a"):
        run_suite(suite, musly=False, candidates={"lib-a": cand}, **kw)
    with pytest.raises(ValueError, match="no library named lib-c"):
        run_suite(suite, musly=False, candidates={"lib-c": cand}, **kw)

    res = run_suite(suite, musly=False, candidates={"lib-b": cand}, **kw)
    a, b = res["libraries"]["lib-a"], res["libraries"]["lib-b"]
    assert "candidate" not in a["rows"] and "init" not in a["finetune"]["recipe"]
    # lib-b's fine-tune starts from the candidate, and the candidate has a row of its own
    assert b["finetune"]["recipe"]["init"] == cand and "run-" in b["finetune"]["model"]
    assert set(b["rows"]) == {"default", "candidate", "fine-tuned", "MFCC mean/std", "untrained network"}
    assert b["rows"]["candidate"]["checksum"] != b["rows"]["default"]["checksum"]
    assert "candidate" not in res["mean"] and "default" in res["mean"]  # no mean of one library's row
    # nor of fine-tunes from different starts (lib-a's from the default, lib-b's from the candidate)
    assert "fine-tuned" not in res["mean"]
    assert b["rows"]["fine-tuned"]["checksum"] not in (
        b["rows"]["candidate"]["checksum"],
        a["rows"]["fine-tuned"]["checksum"],
    )
    table = format_suite(res)
    assert "candidate's gain over the default (1 of 2 libraries)" in table
    assert "fine-tune's gain over the candidate it starts from (1 of 2 libraries)" in table

    # the command line: LIB=CHECKPOINT, and a clear error for anything else
    base = [str(suite), "--steps", "2", "--threads", "1", "--seeds", "1", "--workers", "1", "--no-musly"]
    base += ["--work", str(kw["work"]), "--cache", str(cache)]
    assert main([*base, "--candidate", f"lib-b={cand}"]) == 0
    assert "candidate's gain over the default" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*base, "--candidate", cand])
    assert "expected LIB=CHECKPOINT" in capsys.readouterr().err
