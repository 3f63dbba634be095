"""Copies of one recording are one track to the sampler (never each other's distant segment)."""

import numpy as np
import soundfile as sf

from musicsim.audio.features import FrontEnd
from musicsim.melcache import MelCache
from trainer.duplicates import duplicate_groups
from trainer.sampling import TripletSampler, rng_for


def test_copies_share_a_group_and_are_never_distant(train_library, tmp_path):
    from tests.fixtures.generate import write_audio

    _, fams = train_library
    paths = sorted(fams)
    original = paths[0]
    audio, sr = sf.read(original, dtype="float32")
    copies = [
        str(write_audio(tmp_path / "copy.mp3", audio, sr=sr)),  # another codec
        str(write_audio(tmp_path / "quieter.flac", audio * 0.9, sr=sr)),
    ]  # another master, -0.9 dB
    files = paths + copies
    found, failed = MelCache(tmp_path / "cache", FrontEnd()).build(files, workers=1)
    assert not failed
    cached = [found[p] for p in files]
    groups = duplicate_groups(cached)
    n = len(paths)
    assert groups[n] == groups[0] and groups[n + 1] == groups[0]
    # every other track of the library (variants of a family included) stays its own group;
    # chord_3 is chord_0's chord cycle started 3 s later (the same material), so it may join
    distinct = [i for i, p in enumerate(paths) if not p.endswith("chord_3.wav")]
    assert len(distinct) == n - 1 and len(np.unique(groups[distinct])) == n - 1

    lengths = np.array([c.mel.shape[1] for c in cached])
    sampler = TripletSampler(lengths, groups, 128, 200)
    rng = rng_for(0, 0, 0)
    anchors, starts = sampler.epoch_anchors(rng)
    dist, _ = sampler.distant(rng, groups[anchors])  # one piece per track here: piece = track
    assert len(anchors) and (groups[dist] != groups[anchors]).all()
    copy_ids = {0, n, n + 1}
    hits = [(a, d) for a, d in zip(anchors, dist) if a in copy_ids]
    assert hits and all(d not in copy_ids for _, d in hits)
