import librosa
import numpy as np
import pytest
import torch

from musicsim.audio.features import FrontEnd, LogMel, segment_mel, segment_starts
from musicsim.errors import ModelMismatch


def _signal(sr, seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("fe", [FrontEnd(), FrontEnd(sr=16000, n_fft=512, hop_length=256, n_mels=40, fmax=8000)])
def test_logmel_matches_librosa(fe):
    y = _signal(fe.sr)
    ours = LogMel(fe)(torch.from_numpy(y)).numpy()
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=y,
            sr=fe.sr,
            n_fft=fe.n_fft,
            hop_length=fe.hop_length,
            n_mels=fe.n_mels,
            fmin=fe.fmin,
            fmax=fe.fmax,
            power=2.0,
            center=True,
            pad_mode="constant",
        ),
        ref=1.0,
        amin=fe.amin,
        top_db=None,
    )
    assert ours.shape == ref.shape
    # float32 STFT vs librosa's: agree to a small fraction of a dB where there is energy
    assert np.abs(ours - ref).max() < 0.05


def test_logmel_batches_like_single():
    fe = FrontEnd()
    m = LogMel(fe)
    a, b = _signal(fe.sr, seed=1), _signal(fe.sr, seed=2)
    both = m(torch.from_numpy(np.stack([a, b])))
    assert torch.allclose(both[1], m(torch.from_numpy(b)), atol=1e-4)


def test_segment_samples_give_segment_frames():
    fe = FrontEnd()
    mel = LogMel(fe)(torch.zeros(fe.segment_samples))
    assert mel.shape[-1] == fe.segment_frames


def test_segments_cover_track_and_tile_short_audio():
    assert segment_starts(128 * 3, 128) == [0, 128, 256]
    assert segment_starts(128 * 3 + 70, 128) == [0, 128, 256, 128 * 3 + 70 - 128]  # tail >= half kept
    assert segment_starts(128 * 3 + 20, 128) == [0, 128, 256]
    short = torch.arange(10.0).repeat(4, 1)  # 4 mels x 10 frames
    segs, starts = segment_mel(short, 32)
    assert segs.shape == (1, 1, 4, 32) and starts == [0]
    assert torch.equal(segs[0, 0, :, 10:20], short)  # wrapped, not zero padded


def test_frontend_round_trip_and_unknown_keys():
    fe = FrontEnd(n_mels=96)
    assert FrontEnd.from_dict(fe.to_dict()) == fe
    with pytest.raises(ModelMismatch):
        FrontEnd.from_dict({**fe.to_dict(), "bogus": 1})
