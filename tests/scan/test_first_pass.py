"""The default scan is the fast first pass: windows spread over each track; `analysis = full`
analyses every segment. Real decoding of a generated file into a real SQLite library."""

import sqlite3

import numpy as np

from musicsim.audio.decode import first_pass_windows
from musicsim.config import Config
from musicsim.library import Library
from musicsim.melcache import DecodeSettings
from tests.fixtures.generate import FAMILIES, synth, write_audio


def _starts(db) -> np.ndarray:
    with sqlite3.connect(db) as c:
        (blob,) = c.execute("select segment_starts from embeddings").fetchone()
    return np.frombuffer(blob, np.float32)


def test_default_scan_is_the_first_pass_and_full_analyses_every_segment(tmp_path):
    audio = np.concatenate([synth(f, seconds=20.0, variant=i) for i, f in enumerate(FAMILIES)])  # 80 s
    write_audio(tmp_path / "music" / "long.flac", audio)
    assert Config().analysis == "fast"
    with Library(tmp_path / "fast.db") as lib:
        assert lib.scan([str(tmp_path / "music")]).analysed == 1
        track = lib.tracks()[0]
        assert abs(track.duration - 80.0) < 0.1  # the whole length, though not all of it was decoded
    fast = _starts(tmp_path / "fast.db")
    n = first_pass_windows(80.0, Config().window_seconds)
    assert len(fast) == n  # one segment per 3-s window
    assert fast[0] == 0.0 and fast[-1] > 70.0 and np.all(np.diff(fast) > 3.0)  # spread, not contiguous
    with Library(tmp_path / "full.db", config=Config.load({"analysis": "full"})) as lib:
        lib.scan([str(tmp_path / "music")])
    full = _starts(tmp_path / "full.db")
    assert len(full) == 27 and np.allclose(np.diff(full[:-1]), 128 * 512 / 22050, atol=1e-3)


def test_first_pass_and_full_frames_never_share_a_cache_entry():
    fast = DecodeSettings.from_config(Config())
    full = DecodeSettings.from_config(Config.load({"analysis": "full"}))
    assert fast.first_pass and not full.first_pass
    assert fast.key() != full.key()
    assert "first_pass" not in DecodeSettings().key()  # whole-track entries keep their old keys
