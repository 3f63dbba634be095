"""The desktop app (PySide6). The only package of musicsim that imports Qt.

Entry point: :func:`musicsim.gui.app.run`. Importing this package loads no Qt module.
"""
