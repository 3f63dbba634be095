"""Decoding real generated files in every supported format (no mocks of decoding)."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile

from musicsim.audio import decode, midi
from musicsim.audio.decode import Decoded, decode_for_analysis, load, probe_duration
from musicsim.errors import DecodeError, MissingDecoder, UnsupportedFormat
from tests.fixtures.generate import FAMILIES, make_bad_files, make_library, synth, write_audio, write_midi

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict[Path, str]:
    return make_library(tmp_path_factory.mktemp("lib"), per_family=2, seconds=4.0)


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    return {kind: path for path, kind in make_bad_files(tmp_path_factory.mktemp("bad")).items()}


@pytest.fixture(scope="module")
def long_flac(tmp_path_factory) -> tuple[Path, np.ndarray]:
    audio = np.concatenate([synth(f, seconds=15.0, variant=i) for i, f in enumerate(FAMILIES)])
    return write_audio(tmp_path_factory.mktemp("long") / "long.flac", audio), audio


@pytest.mark.parametrize(
    "ext,rate,channels",
    [
        (".wav", 44100, 2),
        (".flac", 22050, 1),
        (".ogg", 32000, 2),
        (".aiff", 16000, 1),
        (".opus", 48000, 1),
        pytest.param(".mp3", 44100, 2, marks=needs_ffmpeg),
        pytest.param(".m4a", 44100, 2, marks=needs_ffmpeg),
    ],
)
@pytest.mark.parametrize("sr", [22050, 16000])
def test_each_format_decodes_to_mono_float32(tmp_path, ext, rate, channels, sr):
    audio = synth("chord", seconds=3.0, sr=rate)
    if channels == 2:
        audio = np.stack([audio, synth("sine", seconds=3.0, sr=rate)], axis=1)
    path = write_audio(tmp_path / f"track{ext}", audio, sr=rate)
    out = load(path, sr=sr)
    assert out.ndim == 1 and out.dtype == np.float32
    assert abs(len(out) / sr - 3.0) < 0.1
    assert 0.05 < np.abs(out).max() < 1.5
    assert abs(probe_duration(path) - 3.0) < 0.1
    dec = decode_for_analysis(path, sr=sr)
    assert isinstance(dec, Decoded) and len(dec.chunks) == 1 and dec.starts == [0.0]
    assert dec.sr == sr and abs(dec.duration - 3.0) < 0.1 and not dec.degraded
    assert dec.renderer == ("ffmpeg" if ext in decode.FFMPEG_EXTENSIONS else "libsndfile")


def test_library_decodes(library):
    assert len(library) == 8 and any(not p.name.isascii() for p in library)
    for path in library:
        dec = decode_for_analysis(path)
        assert abs(dec.duration - 4.0) < 0.1 and dec.chunks[0].dtype == np.float32


def test_windows_are_spread_seeked_and_exact(long_flac):
    path, audio = long_flac  # 60 s at 22050 Hz
    dec = decode_for_analysis(path, windows=3, window_seconds=4.0)
    assert dec.starts == pytest.approx([0.0, 28.0, 56.0])
    assert dec.duration == pytest.approx(60.0)
    for start, chunk in zip(dec.starts, dec.chunks, strict=True):
        assert len(chunk) == 4 * 22050
        i = int(round(start * 22050))
        np.testing.assert_allclose(chunk, audio[i : i + len(chunk)], atol=2e-4)


def test_long_track_gets_max_seconds_worth_of_windows(long_flac):
    path, _ = long_flac
    dec = decode_for_analysis(path, max_seconds=20.0, window_seconds=5.0)
    assert len(dec.chunks) == 4
    assert dec.starts[0] == 0.0 and dec.starts[-1] + 5.0 == pytest.approx(60.0)
    assert np.diff(dec.starts) == pytest.approx([55 / 3] * 3)
    assert decode_for_analysis(path, max_seconds=60.0).starts == [0.0]  # fits: whole track


def test_short_track_with_windows_comes_back_whole(library):
    path = next(iter(library))
    dec = decode_for_analysis(path, windows=3, window_seconds=2.0)  # 4 s < 3 * 2 s
    assert len(dec.chunks) == 1 and abs(len(dec.chunks[0]) / 22050 - 4.0) < 0.1


@needs_ffmpeg
def test_windows_resample_and_seek_in_mp3_and_m4a(tmp_path, long_flac):
    _, audio = long_flac
    for ext in (".mp3", ".m4a"):
        path = write_audio(tmp_path / f"long{ext}", audio)
        whole = load(path, sr=16000)
        dec = decode_for_analysis(path, sr=16000, windows=3, window_seconds=4.0)
        assert len(dec.chunks) == 3 and abs(dec.starts[1] - 28.0) < 0.1
        for start, chunk in zip(dec.starts, dec.chunks, strict=True):
            assert abs(len(chunk) - 4 * 16000) <= 2
            i = int(round(start * 16000))
            assert np.corrcoef(chunk, whole[i : i + len(chunk)])[0, 1] > 0.98


@needs_ffmpeg
def test_vbr_mp3_without_length_header_is_not_truncated(tmp_path):
    # libsndfile guesses such a file's length from its loud first frames and stops there.
    loud = synth("chord", seconds=20.0)
    quiet = 1e-3 * synth("noise", seconds=20.0)
    path = tmp_path / "vbr.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "f32le",
            "-ar",
            "22050",
            "-ac",
            "1",
            "-i",
            "pipe:0",
            "-c:a",
            "libmp3lame",
            "-q:a",
            "2",
            "-write_xing",
            "0",
            str(path),
        ],
        input=np.concatenate([loud, quiet]).tobytes(),
        check=True,
        timeout=60,
    )
    dec = decode_for_analysis(path)
    assert abs(dec.duration - 40.0) < 0.1 and abs(len(load(path)) / 22050 - 40.0) < 0.1
    windows = decode_for_analysis(path, windows=4, window_seconds=2.0)
    assert windows.chunks and all(abs(len(c) - 2 * 22050) < 50 for c in windows.chunks)


def test_offset_and_duration_seek(long_flac):
    path, audio = long_flac
    part = load(path, offset=31.0, duration=2.5)
    np.testing.assert_allclose(part, audio[31 * 22050 : int(33.5 * 22050)], atol=2e-4)
    with pytest.raises(DecodeError, match="no audio samples"):
        load(path, offset=500.0)


def test_ten_hour_file_keeps_memory_bounded(tmp_path):
    path = tmp_path / "ten_hours.wav"
    nbytes = 10 * 3600 * 8000 * 2  # 8 kHz 16-bit mono
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + nbytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
        + b"data"
        + struct.pack("<I", nbytes)
    )
    with open(path, "wb") as fh:  # sparse: 576 MB long, costs no disk space or write time
        fh.write(header)
        fh.truncate(len(header) + nbytes)
    tracemalloc.start()
    try:
        dec = decode_for_analysis(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dec.duration == pytest.approx(36000.0)
    assert len(dec.chunks) == 120 and dec.starts[-1] == pytest.approx(36000.0 - 6.0)
    assert peak < 120 * 1024 * 1024  # the whole track at 22050 Hz would be 3.2 GB


@pytest.mark.parametrize("channels,rate", [(1, 8000), (2, 44100), (6, 48000), (8, 96000), (2, 192000)])
def test_channels_and_rates(tmp_path, channels, rate):
    base = synth("sine", seconds=2.0, sr=rate)
    gains = np.linspace(0.2, 1.0, channels)
    multi, mono = tmp_path / "multi.wav", tmp_path / "mono.wav"
    soundfile.write(multi, base[:, None] * gains[None, :], rate, subtype="FLOAT")
    soundfile.write(mono, base * gains.mean(), rate, subtype="FLOAT")
    out = load(multi, sr=22050)
    assert out.ndim == 1 and abs(len(out) - 2 * 22050) <= 2
    np.testing.assert_allclose(out, load(mono, sr=22050), atol=1e-5)  # mean of channels


def test_opposite_channels_cancel_in_mono_mix(tmp_path):
    base = synth("noise", seconds=1.0)
    path = tmp_path / "phase.wav"
    soundfile.write(path, np.stack([base, -base], axis=1), 22050, subtype="FLOAT")
    assert np.abs(load(path)).max() < 1e-6


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("empty", "empty file"),
        ("text", "not an audio file (looks like text)"),
        ("png", "not an audio file (looks like PNG)"),
    ],
)
def test_bad_files_raise_one_line_decode_error(bad, kind, reason):
    with pytest.raises(DecodeError) as info:
        decode_for_analysis(bad[kind])
    message = str(info.value)
    assert message == f"{bad[kind]}: {reason}" and "\n" not in message
    with pytest.raises(DecodeError):
        load(bad[kind])


def test_truncated_short_and_silent_files_do_not_crash(bad):
    try:
        dec = decode_for_analysis(bad["truncated"])
        assert 0 < dec.duration < 4.0
    except DecodeError as err:
        assert "\n" not in str(err) and str(bad["truncated"]) in str(err)
    assert abs(decode_for_analysis(bad["short"]).duration - 0.5) < 0.02
    silent = decode_for_analysis(bad["silent"])
    assert silent.duration == pytest.approx(2.0) and not silent.chunks[0].any()


def test_other_failures_are_decode_errors(tmp_path):
    with pytest.raises(UnsupportedFormat, match="unsupported file type .txt"):
        load(tmp_path / "x.txt")
    with pytest.raises(DecodeError, match="file not found"):
        load(tmp_path / "missing.flac")
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DecodeError, match="garbage.flac: "):
        load(garbage)
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.array([0.1, np.nan, 0.2] * 1000, dtype=np.float32), 22050, subtype="FLOAT")
    with pytest.raises(DecodeError, match="NaN"):
        load(nan)
    empty_wav = tmp_path / "nothing.wav"
    soundfile.write(empty_wav, np.zeros(0, dtype=np.float32), 22050)
    with pytest.raises(DecodeError, match="no audio samples"):
        decode_for_analysis(empty_wav)


@needs_ffmpeg
def test_missing_ffmpeg_raises_missing_decoder(tmp_path, monkeypatch):
    path = write_audio(tmp_path / "song.m4a", synth("sine", seconds=1.0))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(MissingDecoder) as info:
        decode_for_analysis(path)
    assert str(info.value) == f"{path}: ffmpeg is not installed; needed for .m4a"
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path))  # hidden the way a bare system would
    with pytest.raises(MissingDecoder, match="ffmpeg"):
        load(path)


@needs_ffmpeg
def test_corrupt_m4a_is_decode_error(tmp_path):
    path = write_audio(tmp_path / "song.m4a", synth("sine", seconds=2.0))
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DecodeError) as info:
        decode_for_analysis(broken)
    assert "\n" not in str(info.value) and str(broken) in str(info.value)


@pytest.mark.skipif(not midi.fluidsynth_available(), reason="FluidSynth not installed")
def test_midi_dispatches_to_renderer(tmp_path):
    path = write_midi(tmp_path / "tune.mid", seconds=4.0)
    dec = decode_for_analysis(path, sr=16000)
    assert dec.renderer.startswith("fluidsynth:") and not dec.degraded
    assert dec.chunks[0].dtype == np.float32 and 3.5 < dec.duration < 6.5
    assert abs(probe_duration(path) - 4.0) < 0.5


def test_files_are_never_modified(library, bad, tmp_path):
    paths = list(library) + [p for p in bad.values() if p.exists()]
    paths.append(write_midi(tmp_path / "m.mid"))
    before = {p: (_sha(p), p.stat().st_mtime_ns) for p in paths}
    for path in paths:
        try:
            decode_for_analysis(path, windows=2, window_seconds=1.0)
            probe_duration(path)
        except DecodeError:
            pass
    assert before == {p: (_sha(p), p.stat().st_mtime_ns) for p in paths}


def _band_profile(audio: np.ndarray) -> np.ndarray:
    power = np.abs(np.fft.rfft(audio)) ** 2
    edges = (np.geomspace(30, 11025, 25) * len(audio) / 22050).astype(int)
    bands = np.array([power[a:b].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    return np.log(bands / bands.sum() + 1e-9)


def test_synth_is_deterministic_and_families_differ():
    assert np.array_equal(synth("noise", variant=2), synth("noise", variant=2))
    assert not np.array_equal(synth("sine", variant=0), synth("sine", variant=1))
    items = [(f, _band_profile(synth(f, seconds=2.0, variant=v))) for f in FAMILIES for v in range(4)]
    for i, (family, profile) in enumerate(items):
        dists = [(np.linalg.norm(profile - other), fam) for j, (fam, other) in enumerate(items) if j != i]
        assert min(dists)[1] == family  # every variant's nearest neighbour is its own family


def test_first_pass_takes_windows_by_length_and_reads_them_exactly(long_flac):
    path, audio = long_flac  # 60 s: more than the fewest 1-s windows cover, whatever the rule's bounds
    w = 1.0
    n = decode.first_pass_windows(60.0, w)
    assert n * w < 60.0
    dec = decode_for_analysis(path, window_seconds=w, first_pass=True)
    assert len(dec.chunks) == n and dec.duration == pytest.approx(60.0)
    assert dec.starts == pytest.approx(decode.window_starts(60.0, n, w))
    assert dec.starts[0] == 0.0 and dec.starts[-1] + w == pytest.approx(60.0)
    for start, chunk in zip(dec.starts, dec.chunks, strict=True):
        i = int(round(start * 22050))
        assert len(chunk) == int(w * 22050)
        np.testing.assert_allclose(chunk, audio[i : i + len(chunk)], atol=2e-4)
    # the full analysis of the same file: one chunk, every sample
    assert len(decode_for_analysis(path, window_seconds=w).chunks) == 1


def test_first_pass_window_count_grows_with_length_within_bounds():
    counts = [decode.first_pass_windows(s, 3.0) for s in (30, 120, 180, 240, 600, 36000)]
    assert counts == sorted(counts)
    assert counts[0] == decode.FIRST_PASS_MIN and counts[-1] == decode.FIRST_PASS_MAX


def test_first_pass_decodes_a_short_track_whole(library):
    path = next(iter(library))  # 4 s
    dec = decode_for_analysis(path, window_seconds=3.0, first_pass=True)
    assert len(dec.chunks) == 1 and abs(len(dec.chunks[0]) / 22050 - 4.0) < 0.1
