"""The log-Mel cache, one home: the store on disk (:mod:`.store`, which the scan fills through
:class:`ScanCacheWriter`) and the builder that decodes what it lacks (:mod:`.builder`, used by
training and re-embedding).

Why cache mels and not raw audio: a log-Mel frame (64 bands, float16) is 128 bytes for 23 ms
of sound, raw 22.05 kHz float16 audio is 1 KiB; so the cache is 8x smaller, an hour of music
is ~20 MB and a whole training corpus fits in RAM (or GPU memory).
"""

from musicsim.melcache.builder import MelCache, mels_of_chunks
from musicsim.melcache.store import (
    CACHE_VERSION,
    UNAVAILABLE_KEEP_DAYS,
    CachedMel,
    DecodeSettings,
    MelStore,
    ScanCacheWriter,
    cache_key,
)

__all__ = [
    "CACHE_VERSION",
    "UNAVAILABLE_KEEP_DAYS",
    "CachedMel",
    "DecodeSettings",
    "MelCache",
    "MelStore",
    "ScanCacheWriter",
    "cache_key",
    "mels_of_chunks",
]
