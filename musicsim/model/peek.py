"""Read a checkpoint's identity without torch: the model checksum, name and trained flag.

Opening a library compares the shipped default model with the active one. Loading it with
torch costs 2-3 s (importing torch, building the network) before the app could show the
library, so this reads the checkpoint's zip directly: ``data.pkl`` is unpickled with stubs
for the few torch globals a checkpoint uses (storages and ``_rebuild_tensor_v2``, nothing
else is allowed), each tensor becomes a numpy view of its storage file, and the checksum is
computed exactly as :func:`musicsim.model.checkpoint.model_checksum` does (a test holds them
equal). Anything unexpected raises :class:`PeekError`, and the caller loads with torch.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
ALLOWED = {("collections", "OrderedDict")}


class PeekError(Exception):
    """The file is not a checkpoint this reader understands (load it with torch instead)."""


@dataclass(frozen=True)
class Identity:
    name: str
    checksum: str
    trained: bool


@dataclass(frozen=True)
class _Storage:
    dtype: Any


def _rebuild(storage, offset, size, stride, *_rest) -> np.ndarray:
    data, dtype = storage
    itemsize = np.dtype(dtype).itemsize
    flat = np.frombuffer(data, dtype=dtype)
    if not size:
        return flat[offset : offset + 1].reshape(())
    return np.lib.stride_tricks.as_strided(
        flat[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
    )


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild
        if module == "torch" and name in DTYPES:
            return _Storage(DTYPES[name])
        if (module, name) in ALLOWED:
            import collections

            return collections.OrderedDict
        raise PeekError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise PeekError(f"unexpected persistent id {pid!r:.80}")
        return self.archive.read(f"{self.prefix}data/{pid[2]}"), pid[1].dtype


def read_dict(path: str | os.PathLike) -> dict:
    """The checkpoint's dict, tensors as read-only numpy arrays. Raises PeekError."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise PeekError("no data.pkl")
            prefix = pkl[0][: -len("data.pkl")]
            if z.read(f"{prefix}byteorder").decode().strip() != "little":
                raise PeekError("not little-endian")
            with z.open(pkl[0]) as fh:
                ckpt = _Unpickler(fh, z, prefix).load()
    except (OSError, zipfile.BadZipFile, KeyError, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise PeekError(str(e) or type(e).__name__) from None
    if not isinstance(ckpt, dict):
        raise PeekError("not a dict")
    return ckpt


def checksum(state: dict, pooling: str = "mean") -> str:
    """:func:`musicsim.model.checkpoint.model_checksum` over numpy arrays."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        value = state[key]
        if isinstance(value, np.ndarray):
            h.update(np.ascontiguousarray(value).tobytes())
    w = h.hexdigest()[:16]
    if pooling == "mean":
        return w
    return hashlib.sha256(f"{w}:pooling={pooling}".encode()).hexdigest()[:16]


def identity(path: str | os.PathLike) -> Identity:
    """Name, model checksum and trained flag of a musicsim checkpoint. Raises PeekError."""
    ckpt = read_dict(path)
    if ckpt.get("format") != "musicsim-checkpoint" or not isinstance(ckpt.get("model"), dict):
        raise PeekError("not a musicsim checkpoint")
    args = ckpt.get("model_args") or {}
    pooling = str(args.get("pooling", "mean")) if isinstance(args, dict) else "mean"
    name = str(ckpt.get("name") or os.path.splitext(os.path.basename(os.fspath(path)))[0])
    return Identity(name=name, checksum=checksum(ckpt["model"], pooling), trained=bool(ckpt.get("trained", True)))
