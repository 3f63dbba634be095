"""The scan fills the log-Mel cache, so training on a scanned library decodes nothing again."""

import json
import os
import shutil

import numpy as np

from musicsim.config import Config
from musicsim.library import Library
from musicsim.melcache import UNAVAILABLE_KEEP_DAYS, DecodeSettings, MelCache, MelStore
from musicsim.paths import cache_dir


def test_scan_caches_exactly_what_the_trainer_would_decode(family_library, tmp_path):
    root, families = family_library
    with Library(tmp_path / "lib.db") as lib:
        rep = lib.scan([str(root)])
        fe, decode = lib.loaded.frontend, DecodeSettings.from_config(lib.config)
        paths = [t.path for t in lib.tracks()]
    assert rep.analysed == len(families) == len(paths)
    store = MelStore(None, fe, decode)
    hits = {p: store.get(p) for p in paths}
    assert all(c is not None for c in hits.values())  # every analysed track, MIDI included
    assert store.usage_bytes() > 0 and str(store.root).startswith(str(cache_dir()))
    # the trainer's cache finds them all: nothing left to decode
    seen = []
    found, failed = MelCache(None, fe, decode).build(paths, workers=1, progress=seen.append)
    assert set(found) == set(paths) and not failed
    assert seen[0].stage == "cache" and seen[0].current == "0 tracks to decode"
    # and the frames equal what the trainer decodes itself (other root: a fresh decode)
    fresh, _ = MelCache(tmp_path / "fresh", fe, decode).build(paths[:3], workers=1)
    for p in paths[:3]:
        a, b = np.asarray(hits[p].mel, np.float32), np.asarray(fresh[p].mel, np.float32)
        assert a.shape == b.shape and np.abs(a - b).max() < 0.1  # float16 dB frames
        assert hits[p].starts == fresh[p].starts and hits[p].chunk_frames == fresh[p].chunk_frames


def test_budget_off_full_and_changed_files(family_library, tmp_path, monkeypatch):
    from musicsim.audio.features import FrontEnd
    from musicsim.melcache import ScanCacheWriter

    root, _ = family_library
    monkeypatch.setenv("MUSICSIM_MEL_CACHE_GB", "0")
    with Library(tmp_path / "off.db") as lib:
        assert lib.config.mel_cache_gb == 0
        assert lib.scan([str(root)]).analysed > 0
    assert not (cache_dir() / "mels").exists()

    f = str(next(root.rglob("*.wav")))
    st = os.stat(f)
    mel = np.zeros((64, 1000), np.float16)  # 128,000 bytes
    w = ScanCacheWriter(Config.load({"mel_cache_gb": 300_000 / 2**30}), FrontEnd(), root=tmp_path / "c")
    assert w.put(f, st.st_size, st.st_mtime, [mel], [0.0], 23.0)
    assert MelStore(tmp_path / "c", FrontEnd(), DecodeSettings.from_config(Config())).get(f) is not None
    g = str(next(p for p in root.rglob("*.flac")))
    gst = os.stat(g)
    assert w.put(g, gst.st_size, gst.st_mtime, [mel], [0.0], 23.0)  # 256 KB of 293 KB used
    h = str(next(p for p in root.rglob("*.ogg")))
    hst = os.stat(h)
    assert not w.put(h, hst.st_size, hst.st_mtime, [mel], [0.0], 23.0) and "budget" in w.stopped
    # a file that changed after it was decoded is not cached under its new identity
    w2 = ScanCacheWriter(Config.load({"mel_cache_gb": 1.0}), FrontEnd(), root=tmp_path / "d")
    with open(h, "ab") as fh:
        fh.write(b"\0")
    assert not w2.put(h, hst.st_size, hst.st_mtime, [mel], [0.0], 23.0) and w2.written == 0
    # a cache folder that cannot be made (a file stands in its way) only stops caching
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    w3 = ScanCacheWriter(Config.load({"mel_cache_gb": 1.0}), FrontEnd(), root=blocker / "mels")
    assert not w3.put(f, st.st_size, st.st_mtime, [mel], [0.0], 23.0) and "could not be written" in w3.stopped


def test_stale_entries_are_pruned_when_the_budget_is_full_and_on_purge(family_library, tmp_path, capsys):
    """A re-tagged file gets a new entry; the old one, and those of deleted files, go at the
    first full budget of a scan, and on `musicsim purge`. Entries of unchanged files stay."""
    from musicsim.audio.features import FrontEnd
    from musicsim.cli import main
    from musicsim.melcache import ScanCacheWriter

    root, _ = family_library
    store = MelStore(tmp_path / "c", FrontEnd(), DecodeSettings())
    mel = np.zeros((64, 1000), np.float16)  # 128,000 bytes
    files = [str(p) for p in sorted(root.rglob("*.wav"))[:2]] + [str(next(root.rglob("*.flac")))]
    keep, edited, deleted = files
    for f in files:
        assert store.put(f, [mel], [0.0], 23.0) is not None
    full = store.usage_bytes()
    with open(edited, "ab") as fh:  # changed since it was decoded (as re-tagging does)
        fh.write(b"\0")
    os.remove(deleted)
    w = ScanCacheWriter(Config.load({"mel_cache_gb": (full + 1000) / 2**30}), FrontEnd(), root=tmp_path / "c")
    w.store = store
    st = os.stat(edited)
    assert w.put(edited, st.st_size, st.st_mtime, [mel], [0.0], 23.0)  # room made by pruning two stale entries
    assert w.pruned and w.removed == 2 and not w.stopped
    assert store.get(keep) is not None and store.get(edited) is not None
    assert len(list((tmp_path / "c").rglob("*.json"))) == 2 and len(list((tmp_path / "c").rglob("*.npy"))) == 2
    assert store.prune() == (0, 0)  # nothing stale is left
    # entries written before identities were recorded: stale only if the file changed after them
    meta_path = next(p for p in (tmp_path / "c").rglob("*.json") if keep in p.read_text())
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k not in ("size", "mtime_ns")}))
    assert store.prune() == (0, 0) and store.get(keep) is not None
    t = os.stat(keep).st_mtime - 100
    os.utime(meta_path, (t, t))
    assert store.prune()[0] == 1 and store.get(keep) is None
    # frames whose entry was never written: removed once they are an hour old, not while a write may be running
    sub = next(p for p in (tmp_path / "c").iterdir() if p.is_dir())
    fresh, old = sub / "fresh.npy", sub / "old.npy"
    for p in (fresh, old):
        np.save(p, mel)
    t = os.stat(old).st_mtime - 7200
    os.utime(old, (t, t))
    assert store.prune()[0] == 1 and fresh.exists() and not old.exists()

    # a file whose whole folder is gone may be on a drive that is not mounted: kept, until 90 days old
    away = tmp_path / "drive" / "album" / "song.wav"
    away.parent.mkdir(parents=True)
    shutil.copy(keep, away)
    assert store.put(str(away), [mel], [0.0], 23.0) is not None
    shutil.rmtree(tmp_path / "drive")
    assert store.prune() == (0, 0)
    away_meta = next(p for p in (tmp_path / "c").rglob("*.json") if str(away) in p.read_text())
    t = os.stat(away_meta).st_mtime - (UNAVAILABLE_KEEP_DAYS + 1) * 86400
    os.utime(away_meta, (t, t))
    assert store.prune()[0] == 1 and not away_meta.exists()

    # `musicsim purge` prunes musicsim's own cache the same way
    with Library(tmp_path / "lib.db") as lib:
        lib.scan([str(root)])
        paths = [t.path for t in lib.tracks()]
    own = MelStore(None, FrontEnd(), DecodeSettings.from_config(Config()))
    before = own.usage_bytes()
    gone = paths[0]
    os.remove(gone)
    assert main(["--db", str(tmp_path / "lib.db"), "purge"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 stale log-Mel cache entries" in out and "purged" in out
    assert own.usage_bytes() < before and all(own.get(p) is not None for p in paths[1:])


def test_models_with_other_segment_lengths_share_the_entries(family_library, tmp_path):
    """Frames do not depend on the segment length; other mel parameters make other entries."""
    import hashlib
    from dataclasses import asdict

    import torch

    from musicsim.audio.features import FrontEnd, segment_chunks
    from musicsim.melcache import CACHE_VERSION, cache_key

    root, _ = family_library
    f = str(next(root.rglob("*.wav")))
    mel = np.random.default_rng(0).normal(size=(64, 500)).astype(np.float16)
    assert MelStore(tmp_path / "c", FrontEnd(), DecodeSettings()).put(
        f, [mel[:, :300], mel[:, 300:]], [0.0, 60.0], 90.0
    )
    short = MelStore(tmp_path / "c", FrontEnd(segment_frames=64), DecodeSettings()).get(f)
    assert short is not None and np.array_equal(np.asarray(short.mel), mel)
    x, starts = short.segments(FrontEnd(segment_frames=64))
    chunks = [torch.from_numpy(mel[:, :300].astype(np.float32)), torch.from_numpy(mel[:, 300:].astype(np.float32))]
    want, want_starts = segment_chunks(chunks, [0.0, 60.0], FrontEnd(segment_frames=64))
    assert x.shape[1:] == (1, 64, 64) and torch.equal(x, want) and np.array_equal(starts, want_starts)
    assert MelStore(tmp_path / "c", FrontEnd(n_mels=32), DecodeSettings()).get(f) is None
    assert MelStore(tmp_path / "c", FrontEnd(), DecodeSettings(windows=2)).get(f) is None
    # entries written before (keyed with the default segment length in the front end) stay valid
    st = os.stat(f)
    old = {
        "v": CACHE_VERSION,
        "path": os.path.abspath(f),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "frontend": FrontEnd().to_dict(),
        "decode": {k: v for k, v in asdict(DecodeSettings()).items() if k != "first_pass"},  # fields of then
    }
    old_key = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:32]
    assert cache_key(f, st.st_size, st.st_mtime_ns, FrontEnd(segment_frames=256), DecodeSettings()) == old_key
