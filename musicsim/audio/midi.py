"""Render MIDI files to audio so they can be embedded like any other track.

FluidSynth with a General MIDI SoundFont gives realistic instruments; without it
pretty_midi's sine synthesis (plus simple noise drums) keeps MIDI usable, marked degraded.

Limits, each stated in the reason when a file exceeds it: at most 64 MiB of file and 10 hours
of playing time. Files at very fine resolutions (notation programs export 10,080 ticks per
beat and more, so a long piece reaches tens of millions of ticks) are read at a coarser one
instead of being called corrupt: pretty_midi keeps a table with one entry per tick, so the
resolution is divided until the piece has at most 10 million ticks (80 MB), moving no event by
more than one new tick (under 0.1 % of a beat at 1,000 ticks per beat). Rendering time is
bounded by the caller: a piece longer than the whole-track limit is rendered only in the
windows analysed (:func:`render_windows`).
"""

from __future__ import annotations

import functools
import glob
import io
import math
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
_MAX_TICKS = 10_000_000  # pretty_midi's tick table: 8 bytes per tick
_MAX_HOURS = 10.0  # longer than any recording; beyond it a tempo or length is nonsense
_WINDOW_GAP = 3.0  # silence between windows rendered in one pass, so notes ring out apart
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
            _coarsen(mf)
            title = None
            if mf.tracks:
                names = [m.name for m in mf.tracks[0] if m.type == "track_name"]
                title = _title(names[0]) if names else None
            pm = pretty_midi.PrettyMIDI(mido_object=mf)
    except DecodeError:
        raise
    except EOFError:
        raise DecodeError("truncated MIDI file: it ends in the middle of a track", path=path) from None
    except Exception as exc:
        reason = _PARSE_REASONS.get(type(exc)) or str(exc).strip() or type(exc).__name__
        raise DecodeError(f"corrupt MIDI file: {reason[:200]}", path=path) from None
    if not any(inst.notes for inst in pm.instruments) and _has_note_ons(mf):
        raise DecodeError("MIDI notes are never released (note-on without note-off), so none sounds", path=path)
    hours = pm.get_end_time() / 3600
    if hours > _MAX_HOURS:
        raise DecodeError(
            f"MIDI file too long: it plays for {hours:.1f} hours (the limit is {_MAX_HOURS:.0f})", path=path
        )
    return pm, title


def _has_note_ons(mf) -> bool:
    return any(msg.type == "note_on" and msg.velocity > 0 for track in mf.tracks for msg in track)


_PARSE_REASONS: dict[type[Exception], str] = {ZeroDivisionError: "zero tempo or time division"}


def _coarsen(mf) -> None:
    """Divide the resolution of a file with more than _MAX_TICKS ticks (see the module docstring)."""
    longest = max((sum(msg.time for msg in track) for track in mf.tracks), default=0)
    if longest <= _MAX_TICKS or mf.ticks_per_beat <= 0:
        return
    factor = math.ceil(longest / _MAX_TICKS)
    new_tpq = max(1, round(mf.ticks_per_beat / factor))
    # Tempo is microseconds per beat: rescaled so that new_tpq ticks last as long as factor * new_tpq old ones.
    stretch = new_tpq * factor / mf.ticks_per_beat
    for track in mf.tracks:
        now = done = 0
        for msg in track:
            now += msg.time
            at = round(now / factor)
            msg.time, done = at - done, at
            if msg.type == "set_tempo":
                msg.tempo = min(max(round(msg.tempo * stretch), 1), 0xFFFFFF)
    mf.ticks_per_beat = new_tpq


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


def load(path: str | os.PathLike):
    """Parse a MIDI file for rendering (see the module docstring for the limits); raises DecodeError."""
    pm, _ = _parse(path)
    if not any(inst.notes for inst in pm.instruments):
        raise DecodeError("MIDI file has no notes", path=path)
    return pm


def playing_time(pm) -> float:
    """Seconds until the last note ends."""
    return max((n.end for inst in pm.instruments for n in inst.notes), default=0.0)


def _window(pm, offsets: list[float], seconds: float):
    """A new piece with each window's notes and controls laid end to end, _WINDOW_GAP apart."""
    import pretty_midi

    out = pretty_midi.PrettyMIDI()
    slot = seconds + _WINDOW_GAP
    for inst in pm.instruments:
        part = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drum, name=inst.name)
        for k, off in enumerate(offsets):
            base, end = k * slot, off + seconds
            for n in inst.notes:
                if n.start < end and n.end > off:
                    s, e = max(n.start, off) - off + base, min(n.end, end) - off + base
                    part.notes.append(pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=s, end=e))
            state: dict[int, Any] = {}  # each controller's value as the window opens
            for c in inst.control_changes:
                if c.time < off:
                    state[c.number] = c
                elif c.time < end:
                    part.control_changes.append(pretty_midi.ControlChange(c.number, c.value, c.time - off + base))
            for c in state.values():
                part.control_changes.append(pretty_midi.ControlChange(c.number, c.value, base))
            bends = [b for b in inst.pitch_bends if off <= b.time < end]
            part.pitch_bends += [pretty_midi.PitchBend(b.pitch, b.time - off + base) for b in bends]
        part.notes.sort(key=lambda n: (n.start, n.pitch))
        part.control_changes.sort(key=lambda c: c.time)
        part.pitch_bends.sort(key=lambda b: b.time)
        out.instruments.append(part)
    return out


def render_windows(
    pm, offsets: list[float], seconds: float, *, sr: int = 22050, soundfont: str | None = None, path=None
) -> tuple[list[np.ndarray], bool, str]:
    """Render only the windows ``[offset, offset + seconds)`` of a parsed piece, in one pass.

    Rendering time is that of the windows, not of the piece, so a 40-minute quartet analysed
    in windows renders in seconds. Each window comes back as long as the piece lasts in it
    (rests included), the last one possibly shorter.

    Returns
    -------
    chunks, degraded, renderer
        As :func:`render_midi`, one chunk per window.
    """
    collage = _window(pm, offsets, seconds)
    _merge_parts(collage)
    audio, degraded, renderer = _render(collage, sr, soundfont, path)
    total, slot = playing_time(pm), seconds + _WINDOW_GAP
    chunks = []
    for k, off in enumerate(offsets):
        want = int(round(max(min(seconds, total - off), 0.0) * sr))
        a = int(round(k * slot * sr))
        chunk = audio[a : a + want]
        chunks.append(np.pad(chunk, (0, want - len(chunk))) if len(chunk) < want else chunk)
    return chunks, degraded, renderer


def _render(pm, sr: int, soundfont: str | None, path=None) -> tuple[np.ndarray, bool, str]:
    if not any(inst.notes for inst in pm.instruments):
        return np.zeros(int(sr), np.float32), False, "silence"
    audio = None
    renderer = "pretty_midi-sine"
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
    audio = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise DecodeError("MIDI rendering produced invalid samples", path=path)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0:
        audio *= 0.9 / peak
    return audio, degraded, renderer


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
    pm = load(path)
    _trim(pm, max_seconds)
    _merge_parts(pm)
    return _render(pm, sr, soundfont, path)


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
