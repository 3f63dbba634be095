import numpy as np
import pytest

from musicsim.model.embed import track_vector
from trainer.evaluate import embedding_metrics, evaluate_folder, format_report, labelled_files, pool_segments


def test_pooling():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((7, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert np.allclose(pool_segments(v, "mean"), track_vector(v))
    assert np.allclose(pool_segments(v, "meanstd"), track_vector(v, "meanstd"))
    ms = pool_segments(v, "meanstd")
    assert ms.shape == (32,) and np.isclose(np.linalg.norm(ms), 1.0)
    assert np.allclose(ms[16:] / ms[:16].dot(track_vector(v)), 2.0 * v.std(0), atol=1e-5)
    with pytest.raises(ValueError):
        pool_segments(v, "max")
    # descriptors: the embedding (first 16 values) and two parts of texture statistics (8 and 4 more)
    t3, t2 = rng.random((7, 8)).astype(np.float32), rng.random((7, 4)).astype(np.float32)
    d = np.concatenate([v, t3, t2], axis=1)
    parts = (16, 8, 4)
    assert np.allclose(pool_segments(d, "mean", parts=parts), track_vector(v))
    assert np.allclose(pool_segments(d, "meanstd", parts=parts), ms)
    ml = pool_segments(d, "multilevel", parts=parts)
    assert ml.shape == (48,) and np.allclose(ml[:32] * np.sqrt(2), ms, atol=1e-6)
    assert np.allclose(ml[32:] * np.sqrt(2), track_vector(t3, "meanstd"), atol=1e-6)
    # three levels: each part pooled alike, equal weight
    m3 = pool_segments(d, "multilevel3", parts=parts)
    assert m3.shape == (56,) and np.isclose(np.linalg.norm(m3), 1.0)
    for part, (a, b) in zip((v, t3, t2), ((0, 32), (32, 48), (48, 56))):
        assert np.allclose(m3[a:b] * np.sqrt(3), track_vector(part, "meanstd"), atol=1e-6)
    with pytest.raises(ValueError):
        pool_segments(d, "multilevel3", parts=(16, 12))  # the parts must be known


def test_metrics_on_separated_and_random_vectors():
    rng = np.random.default_rng(0)
    centres = np.eye(4)
    labels = np.repeat(["a", "b", "c", "d"], 8)
    X = centres[np.repeat(np.arange(4), 8)] + 0.01 * rng.standard_normal((32, 4))
    m = embedding_metrics(X, labels)
    assert m["p@5"] == pytest.approx(1.0) and m["1nn"] == 1.0 and m["probe"] == 1.0
    assert m["nmi"] == pytest.approx(1.0) and m["auroc"] == pytest.approx(1.0)
    R = rng.standard_normal((32, 4))
    r = embedding_metrics(R, labels)
    assert r["p@5"] < 0.6 and r["nmi"] < 0.5
    # precision only over queries of one label
    q = embedding_metrics(X, labels, query_labels=["a"], holdout="a")
    assert q["p@5"] == pytest.approx(1.0) and q["auroc"] == pytest.approx(1.0)


def test_evaluate_folder_prints_model_and_baselines(train_library, mel_cache_dir):
    root, fams = train_library
    files = labelled_files(root)
    assert len(files) == len(fams) and {lab for _, lab in files} == set(fams.values())
    res = evaluate_folder(
        root, cache=str(mel_cache_dir), device="cpu", workers=1, combined=True, pooling=("mean", "meanstd")
    )
    assert res["tracks"] == 16 and res["labels"] == {"chord": 4, "clicks": 4, "noise": 4, "sine": 4}
    kinds = [res["methods"][n]["kind"] for n in res["order"]]
    assert kinds == ["model", "model", "baseline", "baseline", "baseline", "combined"]
    assert "MFCC mean/std" in res["methods"] and "untrained network [mean]" in res["methods"]
    assert [res["methods"][n].get("pooling") for n in res["order"][:2]] == ["mean", "meanstd"]
    for name in res["order"]:
        for k in ("p@5", "1nn", "probe", "nmi", "auroc"):
            v = res["methods"][name][k]
            assert v is None or 0.0 <= v <= 1.0
    # four very different timbre families: MFCC statistics separate them
    assert res["methods"]["MFCC mean/std"]["1nn"] >= 0.9
    # by default one row per network, pooled as the library stores that model's vectors
    own = evaluate_folder(root, cache=str(mel_cache_dir), device="cpu", workers=1, baselines=False)
    from musicsim.model.checkpoint import default_model

    assert [own["methods"][n]["pooling"] for n in own["order"]] == [default_model().config.pooling]
    text = format_report(res)
    assert "precision@5" in text and "MFCC mean/std" in text and "untrained network" in text


def test_each_pooling_row_is_made_from_the_statistics_that_pooling_takes(train_library, mel_cache_dir):
    """Three-level and multi-band rows of one network: each from its own descriptor (over all
    frequencies / per frequency band), equal to the vectors a model of that pooling stores."""
    import copy
    from dataclasses import replace

    import torch

    from musicsim.index.norm import normalise_library
    from musicsim.melcache import DecodeSettings, MelCache
    from musicsim.model.checkpoint import default_model
    from musicsim.model.embed import Embedder
    from trainer.evaluate import track_vectors

    root, _ = train_library
    res = evaluate_folder(
        root, cache=str(mel_cache_dir), device="cpu", workers=1, baselines=False, pooling=("multilevel3", "multiband")
    )
    lm = default_model()
    files = labelled_files(root)
    found, _ = MelCache(str(mel_cache_dir), lm.frontend, DecodeSettings()).build(
        [f for f, _ in files], device=torch.device("cpu"), workers=1
    )
    cached, labels = [found[f] for f, _ in files], np.array([lab for _, lab in files])
    by_pooling = {}
    for name in res["order"]:
        pm = res["methods"][name]["pooling"]
        X = track_vectors(lm, cached, device="cpu", pooling=pm)
        assert X.shape[1] == replace(lm.config, pooling=pm).track_dim
        want = embedding_metrics(normalise_library(X), labels)
        assert res["methods"][name]["p@5"] == pytest.approx(want["p@5"])
        assert res["methods"][name]["probe"] == pytest.approx(want["probe"])
        by_pooling[pm] = X
    assert set(by_pooling) == {"multilevel3", "multiband"}
    # a model whose own pooling is multi-band stores exactly the vectors of the multi-band row
    net = copy.deepcopy(lm.model)
    net.cfg = replace(lm.config, pooling="multiband")
    emb = Embedder(replace(lm, model=net, config=net.cfg), device="cpu")
    for i in (0, 5):
        segs, _ = cached[i].segments(lm.frontend)
        stored = emb.track_vector(emb.embed_segments(segs))
        assert np.allclose(stored, by_pooling["multiband"][i], atol=1e-5)


def test_evaluate_cli(train_library, mel_cache_dir, tmp_path, capsys):
    from trainer.evaluate import main

    root, _ = train_library
    assert (
        main(
            [
                str(root),
                "--cache",
                str(mel_cache_dir),
                "--device",
                "cpu",
                "--workers",
                "1",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    assert "linear probe" in capsys.readouterr().out and (tmp_path / "r.json").exists()


def test_musicsim_evaluate_delegates(train_library, mel_cache_dir, capsys):
    from musicsim.cli import main

    root, _ = train_library
    assert (
        main(
            [
                "evaluate",
                str(root),
                "--cache",
                str(mel_cache_dir),
                "--device",
                "cpu",
                "--workers",
                "1",
                "--no-baselines",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "precision@5" in out and "MFCC" not in out


def test_compare_rows_of_one_name_stay_apart(train_library, mel_cache_dir, tmp_path):
    """Runs of one recipe share a model name; each checkpoint still gets its own row and figures."""
    import torch

    from musicsim.model.checkpoint import DEFAULT_RESOURCE, load_model, read_checkpoint, save_checkpoint

    root, _ = train_library
    base = read_checkpoint(DEFAULT_RESOURCE)
    paths = []
    for i in (1, 2):
        g = torch.Generator().manual_seed(i)
        state = {
            k: v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
            for k, v in base["model"].items()
        }
        paths.append(save_checkpoint(dict(base, model=state), tmp_path / f"run{i}.pt"))
    res = evaluate_folder(
        root,
        cache=str(mel_cache_dir),
        device="cpu",
        workers=1,
        baselines=False,
        model_path=str(DEFAULT_RESOURCE),
        compare=[str(p) for p in paths],
    )
    name = base["name"]
    assert res["order"] == [f"model: {name}", f"model: {name} (run1.pt)", f"model: {name} (run2.pt)"]
    sums = [res["methods"][n]["checksum"] for n in res["order"]]
    assert sums == [load_model(p).checksum for p in (DEFAULT_RESOURCE, *paths)] and len(set(sums)) == 3


def test_network_rows_compare_vectors_as_a_library_does(train_library, mel_cache_dir, tmp_path):
    """By default a network's track vectors are z-scored over the evaluated tracks, as a
    library of those tracks compares them; --raw-vectors compares them as stored."""
    import os

    import torch

    from musicsim.index.norm import normalise_library
    from musicsim.melcache import DecodeSettings, MelCache
    from musicsim.model.checkpoint import default_model
    from trainer.evaluate import track_vectors

    src, _ = train_library
    # labels that cut across the timbre families, so that the figures depend on the details
    root = tmp_path / "labelled"
    for i, (path, _) in enumerate(labelled_files(src)):
        (root / f"half{i % 2}").mkdir(parents=True, exist_ok=True)
        os.symlink(path, root / f"half{i % 2}" / os.path.basename(path))
    files = labelled_files(root)
    lm = default_model()
    found, _ = MelCache(str(mel_cache_dir), lm.frontend, DecodeSettings()).build(
        [p for p, _ in files], device=torch.device("cpu"), workers=1
    )
    X = track_vectors(lm, [found[p] for p, _ in files], device="cpu")
    labels = [lab for _, lab in files]
    rows = {}
    for flag, V in ((True, normalise_library(X)), (False, X)):
        res = evaluate_folder(
            root, cache=str(mel_cache_dir), device="cpu", workers=1, baselines=False, library_norm=flag
        )
        rows[flag] = row = res["methods"][res["order"][0]]
        want = embedding_metrics(V, labels)
        for k in ("p@5", "1nn", "probe", "nmi"):
            assert row[k] == pytest.approx(want[k]), k
        assert ("--raw-vectors" in format_report(res)) is (not flag)
    assert any(rows[True][k] != pytest.approx(rows[False][k]) for k in ("p@5", "1nn", "nmi"))


def test_metrics_over_seeds_average_the_seeded_metrics():
    """--seeds N: the probe and NMI are the mean over N evaluation seeds; the rest do not depend on one."""
    from trainer.evaluate import metrics_over_seeds

    rng = np.random.default_rng(3)
    labels = np.repeat(["a", "b", "c"], 10)
    X = rng.standard_normal((30, 6)) + 0.8 * np.eye(6)[np.repeat([0, 1, 2], 10)]  # overlapping classes
    single = [embedding_metrics(X, labels, seed=s) for s in (4, 5, 6)]
    m = metrics_over_seeds(X, labels, seed=4, seeds=3)
    for k in ("probe", "nmi"):
        vals = [r[k] for r in single]
        assert m["per_seed"][k] == pytest.approx(vals) and m[k] == pytest.approx(np.mean(vals))
    assert len(set(m["per_seed"]["probe"])) > 1  # the seeds really differ here, so the mean is not one of them
    for k in ("p@5", "1nn", "auroc"):
        assert m[k] == pytest.approx(single[0][k])
    one = metrics_over_seeds(X, labels, seed=5)
    assert one["probe"] == pytest.approx(single[1]["probe"]) and one["per_seed"]["probe"] == [single[1]["probe"]]


def test_evaluate_cli_seeds(train_library, mel_cache_dir, tmp_path, capsys):
    import json

    from trainer.evaluate import main

    root, _ = train_library
    assert (
        main(
            [
                str(root),
                "--cache",
                str(mel_cache_dir),
                "--device",
                "cpu",
                "--workers",
                "1",
                "--no-baselines",
                "--seed",
                "2",
                "--seeds",
                "3",
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    assert "mean over evaluation seeds 2-4" in capsys.readouterr().out
    res = json.loads((tmp_path / "r.json").read_text())
    row = res["methods"][res["order"][0]]
    assert res["seeds"] == [2, 3, 4] and len(row["per_seed"]["probe"]) == 3
    assert row["probe"] == pytest.approx(np.mean(row["per_seed"]["probe"]))
