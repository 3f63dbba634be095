"""Render MIDI files to audio so they can be embedded like any other track.

FluidSynth with a General MIDI SoundFont gives realistic instruments; without it
pretty_midi's sine synthesis (plus simple noise drums) keeps MIDI usable, marked degraded.
"""

from __future__ import annotations

import functools
import glob
import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from musicsim.errors import DecodeError

_SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf2",
)
_SOUNDFONT_GLOBS = ("/usr/share/soundfonts/*.sf2", "/usr/share/soundfonts/*.sf3")
_MAX_MIDI_BYTES = 64 * 1024 * 1024  # real MIDI files are kilobytes; bigger is a misnamed file
_RELEASE_SECONDS = 2.0  # let clipped notes and reverb ring out past the render limit


def find_soundfont(configured: str | None = None) -> tuple[str | None, str]:
    """Pick the SoundFont used to render MIDI.

    Parameters
    ----------
    configured : str, optional
        A path from the user's settings; used when it exists.

    Returns
    -------
    path : str or None
        The SoundFont, or None when none was found.
    description : str
        One line saying which SoundFont was chosen and why, for settings and logs.
    """
    note = f"configured SoundFont {configured} not found; " if configured else ""
    if configured and os.path.isfile(configured):
        return configured, f"configured SoundFont {configured}"
    env = os.environ.get("MUSICSIM_SOUNDFONT")
    if env and os.path.isfile(env):
        return env, note + f"SoundFont from MUSICSIM_SOUNDFONT ({env})"
    candidates = list(_SYSTEM_SOUNDFONTS)
    for pattern in _SOUNDFONT_GLOBS:
        candidates += sorted(glob.glob(pattern))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate, note + f"system General MIDI SoundFont {candidate}"
    try:
        import pretty_midi

        bundled = Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")
        if bundled.is_file():
            return str(bundled), note + "TimGM6mb.sf2 bundled with pretty_midi (small, basic sound)"
    except ImportError:
        pass
    return None, note + "no SoundFont found; MIDI will be rendered with plain sine tones"


@functools.lru_cache(maxsize=1)
def fluidsynth_available() -> bool:
    """Return True when pyfluidsynth imports and the FluidSynth library loads."""
    try:
        import fluidsynth  # raises ImportError (or OSError) when libfluidsynth is missing
    except Exception:
        return False
    # A different PyPI project is also called "fluidsynth"; only pyfluidsynth has Synth.
    return hasattr(fluidsynth, "Synth") and hasattr(fluidsynth.Synth, "get_samples")


def _read_midi_bytes(path: str | os.PathLike) -> bytes:
    try:
        # Non-blocking open + fstat: a FIFO or device named *.mid must not hang the reader.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise DecodeError("not a regular file (a pipe, socket, device or folder)", path=path)
            if st.st_size > _MAX_MIDI_BYTES:
                raise DecodeError(f"MIDI file too large ({st.st_size // 2**20} MiB)", path=path)
            data = fh.read(_MAX_MIDI_BYTES + 1)
    except OSError as exc:
        raise DecodeError.from_os_error(exc, path) from None
    if len(data) > _MAX_MIDI_BYTES:  # grew while being read
        raise DecodeError(f"MIDI file too large (over {_MAX_MIDI_BYTES // 2**20} MiB)", path=path)
    if not data:
        raise DecodeError("empty file", path=path)
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":  # RIFF-wrapped MIDI: SMF is inside
        data = data[max(data.find(b"MThd"), 0) :]
    if data[:4] != b"MThd":
        raise DecodeError("not a MIDI file (no MThd header)", path=path)
    return data


# Names sequencers give a file's first track by default; as a title they say nothing (6 of the
# dev library's 31 MIDI files are called "Track 1"), so the file name is used instead.
_DEFAULT_TRACK_NAME = re.compile(
    r"(midi |tempo |conductor )?(track|sequence|untitled|unnamed|staff|new song)( ?#? ?\d+)?", re.IGNORECASE
)


def _title(name: str | None) -> str | None:
    name = (name or "").strip("\x00 \t\r\n")
    return None if not name or _DEFAULT_TRACK_NAME.fullmatch(name) else name


def _parse(path: str | os.PathLike):
    """Return ``(PrettyMIDI, title or None)``; corrupt files raise DecodeError."""
    import mido
    import pretty_midi

    data = _read_midi_bytes(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about harmless quirks
            # clip=True: many real files carry out-of-range data bytes that players ignore.
            mf = mido.MidiFile(file=io.BytesIO(data), clip=True, charset="latin1")
            title = None
            if mf.tracks:
                names = [m.name for m in mf.tracks[0] if m.type == "track_name"]
                title = _title(names[0]) if names else None
            pm = pretty_midi.PrettyMIDI(mido_object=mf)
    except DecodeError:
        raise
    except Exception as exc:
        reason = _PARSE_REASONS.get(type(exc)) or str(exc).strip() or type(exc).__name__
        raise DecodeError(f"corrupt MIDI file: {reason[:200]}", path=path) from None
    return pm, title


_PARSE_REASONS = {EOFError: "the file ends in the middle of a track", ZeroDivisionError: "zero tempo or time division"}
# More parts than this are merged by (program, drums) before rendering: FluidSynth renders
# each part separately, so a file with thousands of one-note tracks would take minutes.
_MAX_PARTS = 32


def _merge_parts(pm) -> None:
    """Merge instruments that share program and drum flag (same sound) when there are many."""
    if len(pm.instruments) <= _MAX_PARTS:
        return
    merged: dict[tuple[int, bool], Any] = {}  # pretty_midi.Instrument (untyped)
    for inst in pm.instruments:
        key = (inst.program, inst.is_drum)
        into = merged.get(key)
        if into is None:
            merged[key] = inst
            continue
        into.notes.extend(inst.notes)
        into.pitch_bends.extend(inst.pitch_bends)
        into.control_changes.extend(inst.control_changes)
    for inst in merged.values():
        inst.notes.sort(key=lambda n: (n.start, n.pitch))
        inst.pitch_bends.sort(key=lambda b: b.time)
        inst.control_changes.sort(key=lambda c: c.time)
    pm.instruments = list(merged.values())


def _trim(pm, max_seconds: float) -> None:
    """Drop events after ``max_seconds`` so absurd tempos or lengths cannot allocate gigabytes."""
    for inst in pm.instruments:
        inst.notes = [n for n in inst.notes if n.start < max_seconds]
        for note in inst.notes:
            note.end = min(note.end, max_seconds + _RELEASE_SECONDS)
        inst.pitch_bends = [b for b in inst.pitch_bends if b.time < max_seconds]
        inst.control_changes = [c for c in inst.control_changes if c.time < max_seconds]


def _synthesize(pm, sr: int) -> np.ndarray:
    """Sine tones for pitched parts and noise bursts for drums (pretty_midi skips drums)."""
    end = max(n.end for inst in pm.instruments for n in inst.notes)
    out = np.zeros(int(np.ceil((end + 1.0) * sr)), dtype=np.float64)
    t = np.arange(int(0.15 * sr)) / sr
    env = np.exp(-t / 0.03)
    noise = np.random.default_rng(0).uniform(-1, 1, t.size) * env
    thump = np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.06)
    for inst in pm.instruments:
        if not inst.notes:
            continue
        if inst.is_drum:
            for note in inst.notes:
                burst = (thump if note.pitch <= 36 else noise) * (note.velocity / 127)
                i = int(note.start * sr)
                seg = out[i : i + burst.size]
                seg += burst[: seg.size]
        else:
            wave = inst.synthesize(fs=sr, wave=np.sin)
            n = min(wave.size, out.size)
            out[:n] += wave[:n]
    return out


def render_midi(
    path: str | os.PathLike, *, sr: int = 22050, soundfont: str | None = None, max_seconds: float = 1200.0
) -> tuple[np.ndarray, bool, str]:
    """Render a MIDI file to mono audio.

    Parameters
    ----------
    path : str or PathLike
        ``.mid``/``.midi``/``.kar`` file; opened read-only.
    sr : int
        Sample rate in Hz.
    soundfont : str, optional
        Preferred SoundFont; see :func:`find_soundfont` for the fallbacks.
    max_seconds : float
        Notes starting later are dropped, bounding time and memory.

    Returns
    -------
    audio : np.ndarray
        Mono float32, peak normalised to 0.9 (unless silent).
    degraded : bool
        True when FluidSynth or a SoundFont was unavailable and sine tones were used.
    renderer : str
        ``"fluidsynth:<SoundFont file name>"`` or ``"pretty_midi-sine"``.

    Raises
    ------
    DecodeError
        If the file is not a readable MIDI file or has no notes.
    """
    pm, _ = _parse(path)
    _trim(pm, max_seconds)
    _merge_parts(pm)
    if not any(inst.notes for inst in pm.instruments):
        raise DecodeError("MIDI file has no notes", path=path)
    audio = None
    sf2, _ = find_soundfont(soundfont)
    if sf2 is not None and fluidsynth_available():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    audio = pm.fluidsynth(fs=sr, synthesizer=sf2, normalize=False)
                except TypeError:  # pretty_midi < 0.2.11 knows only sf2_path and always normalises
                    audio = np.nan_to_num(pm.fluidsynth(fs=sr, sf2_path=sf2))
            renderer = f"fluidsynth:{Path(sf2).name}"
        except Exception:
            audio = None  # e.g. a broken SoundFont: sine tones beat losing the track
    degraded = audio is None
    if degraded:
        audio = _synthesize(pm, sr)
        renderer = "pretty_midi-sine"
    audio = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise DecodeError("MIDI rendering produced invalid samples", path=path)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0:
        audio *= 0.9 / peak
    return audio, degraded, renderer


def midi_info(path: str | os.PathLike) -> dict:
    """Read duration, initial tempo, instrument names and title from a MIDI file.

    Parameters
    ----------
    path : str or PathLike
        MIDI file; opened read-only.

    Returns
    -------
    dict
        ``{"duration": float, "tempo": float | None, "instruments": list[str],
        "title": str | None}``.

    Raises
    ------
    DecodeError
        If the file is not a readable MIDI file.
    """
    import pretty_midi

    pm, title = _parse(path)
    _, tempi = pm.get_tempo_changes()
    names = []
    for inst in pm.instruments:
        name = inst.name.strip("\x00 \t\r\n")
        if not name:
            name = "Drums" if inst.is_drum else pretty_midi.program_to_instrument_name(inst.program)
        names.append(name)
    return {
        "duration": float(pm.get_end_time()),
        "tempo": float(tempi[0]) if len(tempi) else None,
        "instruments": names,
        "title": title,
    }
