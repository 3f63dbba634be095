"""Settings: one table (``musicsim.config.SETTINGS``) builds the dialog and the QSettings keys.

Stored under ``config/<name>`` in QSettings (organisation "musicsim", application
"musicsim", or an INI file given explicitly); window geometry and view state live under
``window/``. Precedence is the core's: environment > stored (here) > default.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from musicsim.config import BY_NAME, SETTINGS, Config, Setting
from musicsim.gui.backend import READ_ONLY_MODELS

ORGANISATION = "musicsim"
APPLICATION = "musicsim"
DEVICES = ("auto", "cpu", "cuda", "mps")
_GROUPED = (
    ("Analysis", ("analysis_windows", "window_seconds", "max_seconds", "decode_timeout")),
    ("MIDI", ("soundfont",)),
    ("Performance", ("device", "workers", "batch_size", "ef_search", "mel_cache_gb")),
    ("Start-up", ("rescan_on_start",)),
    ("Watching", ("watch_folders", "watch_settle_seconds", "watch_poll_minutes")),
    ("Players", ("player_mpd_address", "player_mpd_music_dir", "player_command")),
)
LABELS = {
    "soundfont": "SoundFont",
    "device": "Device",
    "workers": "Decoding workers",
    "analysis_windows": "Analysis windows",
    "window_seconds": "Window length",
    "max_seconds": "Window long tracks after",
    "batch_size": "Batch size",
    "ef_search": "Search breadth (ef)",
    "rescan_on_start": "Re-scan library folders at start",
    "decode_timeout": "Give up decoding after",
    "mel_cache_gb": "Mel cache for training (GB)",
    "watch_folders": "Watch library folders for changes",
    "watch_settle_seconds": "Analyse a change after (s quiet)",
    "watch_poll_minutes": "Check folders without events every (min)",
    "player_mpd_address": "MPD address",
    "player_mpd_music_dir": "MPD music directory",
    "player_command": "Player command",
}


def _groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The table's settings in display groups; a setting added to the table later lands in "Other"."""
    groups = tuple((title, tuple(n for n in names if n in BY_NAME)) for title, names in _GROUPED)
    placed = {n for _, names in groups for n in names}
    other = tuple(s.name for s in SETTINGS if s.name not in placed)
    return tuple(g for g in groups if g[1]) + ((("Other", other),) if other else ())


GROUPS = _groups()


class SettingsStore:
    """Typed access to QSettings for the settings table and the window state."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        if path:
            self.qs = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self.qs = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)
        self.path = self.qs.fileName()

    # --- the settings table -----------------------------------------------------------------

    def stored(self) -> dict:
        out = {}
        for s in SETTINGS:
            raw = self.qs.value(f"config/{s.name}")
            if raw is None:
                continue
            try:
                out[s.name] = s.parse(raw)
            except (TypeError, ValueError):
                continue  # a hand-edited bad value falls back to the default
        return out

    def config(self) -> Config:
        return Config.load(stored=self.stored())

    def set(self, name: str, value) -> None:
        setting = BY_NAME[name]
        value = setting.parse(value)
        if value == setting.default:
            self.qs.remove(f"config/{name}")
        else:
            self.qs.setValue(f"config/{name}", value)

    def update(self, values: dict) -> None:
        for name, value in values.items():
            self.set(name, value)
        self.qs.sync()

    # --- window state -----------------------------------------------------------------------

    def value(self, key: str, default=None):
        return self.qs.value(key, default)

    def set_value(self, key: str, value) -> None:
        self.qs.setValue(key, value)

    def bytes(self, key: str) -> QByteArray | None:
        v = self.qs.value(key)
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def sync(self) -> None:
        self.qs.sync()


def env_override(setting: Setting) -> str | None:
    return os.environ.get(setting.env)


class SettingsDialog(QDialog):
    """Library folders, model, and every entry of the settings table."""

    add_folder_requested = Signal()
    rescan_requested = Signal()

    def __init__(
        self,
        store: SettingsStore,
        *,
        roots: list[str] = (),
        models: list[tuple[str, bool, bool]] = (),
        can_switch_model: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.store = store
        self.editors: dict[str, QWidget] = {}
        stored = store.config()
        layout = QVBoxLayout(self)

        lib_box = QGroupBox("Library folders")
        lb = QVBoxLayout(lib_box)
        self.roots = QListWidget()
        self.roots.addItems(list(roots))
        self.roots.setMaximumHeight(90)
        if not roots:
            self.roots.addItem("(none yet: add a folder or drop one on the window)")
        lb.addWidget(self.roots)
        row = QHBoxLayout()
        add = QPushButton("Add folder…")
        add.clicked.connect(self._add_folder)
        rescan = QPushButton("Rescan now")
        rescan.setEnabled(bool(roots))
        rescan.clicked.connect(self._rescan)
        self.remove_root = QPushButton("Remove folder")
        self.remove_root.setToolTip("Stop re-scanning the selected folder (its tracks stay until purged)")
        self.remove_root.setEnabled(bool(roots))
        self.remove_root.clicked.connect(self._remove_selected_root)
        self.removed_roots: list[str] = []
        row.addWidget(add)
        row.addWidget(rescan)
        row.addWidget(self.remove_root)
        row.addStretch(1)
        lb.addLayout(row)
        layout.addWidget(lib_box)

        model_box = QGroupBox("Model")
        mf = QFormLayout(model_box)
        self.model = QComboBox()
        active = None
        for name, trained, is_active in models:
            self.model.addItem(f"{name}{'' if trained else ' (untrained)'}", name)
            if is_active:
                active = self.model.count() - 1
        if active is not None:
            self.model.setCurrentIndex(active)
        self.initial_model = self.model.currentData()
        if not can_switch_model:
            self.model.setEnabled(False)
            self.model.setToolTip(READ_ONLY_MODELS)
        mf.addRow("Active model", self.model)
        layout.addWidget(model_box)

        for title, names in GROUPS:
            box = QGroupBox(title)
            form = QFormLayout(box)
            for name in names:
                setting = BY_NAME[name]
                editor = self._editor(setting, getattr(stored, name))
                self.editors[name] = editor
                label = QLabel(LABELS.get(name, name))
                label.setToolTip(setting.help)
                env = env_override(setting)
                if env is not None:
                    editor.setEnabled(False)
                    editor.setToolTip(f"Set by the environment variable {setting.env}={env}")
                form.addRow(label, editor)
            layout.addWidget(box)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        layout.addWidget(buttons)

    # --- editors from the table -------------------------------------------------------------

    def _editor(self, s: Setting, value) -> QWidget:
        tip = s.help
        if s.type is bool:
            w = QCheckBox()
            w.setChecked(bool(value))
        elif s.type is int:
            w = QSpinBox()
            w.setRange(0, 1_000_000)
            w.setValue(int(value))
            if s.name in ("workers", "analysis_windows"):
                w.setSpecialValueText("auto" if s.name == "workers" else "whole track")
        elif s.type is float:
            w = QDoubleSpinBox()
            w.setRange(0.5, 100_000.0)
            w.setDecimals(1)
            w.setSuffix(" s")
            w.setValue(float(value))
        elif s.choices or s.name == "device":
            w = QComboBox()
            w.setEditable(s.name == "device")
            for c in s.choices or DEVICES:
                w.addItem(str(c))
            w.setCurrentText(str(value))
        elif s.name == "soundfont":
            w = _PathEdit(str(value), "SoundFont (*.sf2 *.sf3);;All files (*)", placeholder="find a system SoundFont")
        else:
            w = QLineEdit(str(value))
        w.setToolTip(tip)
        return w

    def values(self) -> dict:
        out = {}
        for name, w in self.editors.items():
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                out[name] = w.value()
            elif isinstance(w, QComboBox):
                out[name] = w.currentText()
            elif isinstance(w, _PathEdit):
                out[name] = w.text()
            else:
                out[name] = w.text()
        return out

    def set_values(self, values: dict) -> None:
        for name, value in values.items():
            w = self.editors[name]
            if isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                w.setValue(value)
            elif isinstance(w, QComboBox):
                w.setCurrentText(str(value))
            else:
                w.setText(str(value))

    def restore_defaults(self) -> None:
        self.set_values({s.name: s.default for s in SETTINGS if self.editors[s.name].isEnabled()})

    def selected_model(self) -> str | None:
        name = self.model.currentData()
        return name if name != self.initial_model else None

    def save(self) -> None:
        """Store the edited values (environment-set ones are left alone)."""
        self.store.update({n: v for n, v in self.values().items() if self.editors[n].isEnabled()})

    def _add_folder(self) -> None:
        self.add_folder_requested.emit()
        self.reject()

    def _rescan(self) -> None:
        self.rescan_requested.emit()

    def _remove_selected_root(self) -> None:
        item = self.roots.currentItem()
        if item is None or item.text().startswith("(none yet"):
            return
        self.removed_roots.append(item.text())
        self.roots.takeItem(self.roots.row(item))
        self.remove_root.setEnabled(self.roots.count() > 0)


class _PathEdit(QWidget):
    def __init__(self, text: str, filters: str, *, placeholder: str = "") -> None:
        super().__init__()
        self.filters = filters
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(text)
        self.edit.setPlaceholderText(placeholder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)
        self.setFocusProxy(self.edit)
        self.edit.setAlignment(Qt.AlignmentFlag.AlignLeft)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming
        self.edit.setText(text)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a SoundFont", self.text(), self.filters)
        if path:
            self.edit.setText(path)
