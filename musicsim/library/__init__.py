"""The library: the one API the CLI, the GUI and ``python -m trainer``'s library mode use.

``Library`` (a thin facade) opens the database, the active model and its index; the work lives
in the modules beside it: ``models`` (the registry), ``index`` (the keeper of the HNSW index
and its lock), ``scan`` (scan orchestration), ``organizing`` (playlists, clusters, outliers,
duplicates over stored vectors) and ``finetune`` (the library side of training).
"""

from musicsim.library.facade import UNTRAINED_WARNING, Hit, Library, Purged

__all__ = ["UNTRAINED_WARNING", "Hit", "Library", "Purged"]
