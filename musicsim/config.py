"""Every setting declared once: name, type, default, help.

The same table feeds CLI flags (``--analysis-windows``), environment variables
(``MUSICSIM_ANALYSIS_WINDOWS``) and the GUI's QSettings, so they can never disagree.
Precedence: explicit value (CLI flag / GUI) > environment > stored setting > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None

    @property
    def env(self) -> str:
        return "MUSICSIM_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: Any) -> Any:
        if raw is None or isinstance(raw, self.type):
            return raw
        if self.type is bool:
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        value = self.type(raw)
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {self.choices}, not {value!r}")
        return value


SETTINGS: tuple[Setting, ...] = (
    Setting("soundfont", str, "", "General MIDI SoundFont (.sf2) for rendering MIDI; empty: find a system one"),
    Setting("device", str, "auto", "where the model runs: auto (CUDA, then MPS, then CPU), cpu, cuda, mps"),
    Setting("workers", int, 0, "decoding worker processes; 0: one per CPU core"),
    Setting(
        "analysis",
        str,
        "fast",
        "fast: windows spread over each track, their count by its length (the first pass); "
        "full: every segment of every track",
        choices=("fast", "full"),
    ),
    Setting("analysis_windows", int, 0, "0: as 'analysis' says; N: exactly N windows spread across each track"),
    Setting("window_seconds", float, 3.0, "length of each analysis window"),
    Setting("max_seconds", float, 720.0, "tracks longer than this are analysed in windows (bounded memory)"),
    Setting("decode_timeout", float, 600.0, "seconds one file may take to decode before it is given up as hung"),
    Setting("batch_size", int, 64, "segments per model batch"),
    Setting(
        "mel_cache_gb",
        float,
        4.0,
        "disk the scan may fill with log-Mel frames, so training on the library "
        "never decodes it again (~20 MB per hour of music); 0: off",
    ),
    Setting("ef_search", int, 64, "HNSW search breadth: higher is more exact and slower"),
    Setting("rescan_on_start", bool, False, "re-scan library folders when the app starts"),
    Setting("watch_folders", bool, True, "watch the library folders while the app runs and analyse what changes"),
    Setting("watch_settle_seconds", float, 1.0, "quiet time after a change before its files are analysed"),
    Setting(
        "watch_poll_minutes",
        float,
        10.0,
        "how often folders that send no change events (network, too many folders) are checked",
    ),
    Setting("player_mpd_address", str, "localhost:6600", "MPD to play in: HOST:PORT or a unix socket path"),
    Setting("player_mpd_music_dir", str, "", "MPD's music directory as seen here; empty: ask MPD (local socket only)"),
    Setting("player_command", str, "", "program that opens a playlist file; empty: the desktop's default"),
)

BY_NAME = {s.name: s for s in SETTINGS}


@dataclass
class Config:
    soundfont: str = ""
    device: str = "auto"
    workers: int = 0
    analysis: str = "fast"
    analysis_windows: int = 0
    window_seconds: float = 3.0
    max_seconds: float = 720.0
    decode_timeout: float = 600.0
    batch_size: int = 64
    mel_cache_gb: float = 4.0
    ef_search: int = 64
    rescan_on_start: bool = False
    watch_folders: bool = True
    watch_settle_seconds: float = 1.0
    watch_poll_minutes: float = 10.0
    player_mpd_address: str = "localhost:6600"
    player_mpd_music_dir: str = ""
    player_command: str = ""

    @classmethod
    def load(cls, overrides: dict | None = None, stored: dict | None = None) -> Config:
        """Resolve each setting: overrides > environment > stored > default."""
        values = {}
        for s in SETTINGS:
            raw = s.default
            if stored and stored.get(s.name) is not None:
                raw = stored[s.name]
            if s.env in os.environ:
                raw = os.environ[s.env]
            if overrides and overrides.get(s.name) is not None:
                raw = overrides[s.name]
            values[s.name] = s.parse(raw)
        return cls(**values)

    def effective_workers(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)


assert {f.name for f in fields(Config)} == set(BY_NAME), "Config and SETTINGS must list the same names"
