"""The model registry of one library: which models it knows, which is active, and its network.

The database lists every model a library has used (name, checksum, where its weights are,
front-end and network settings, figures). Exactly one is active: its vectors are the ones
similarity, clusters and the index use. The shipped default is "built in" (no path), so it is
found again wherever musicsim is installed.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicsim import resources
from musicsim.errors import ModelMismatch, NotFound
from musicsim.store import repo
from musicsim.store.db import Database
from musicsim.store.schema import Model

if TYPE_CHECKING:
    from musicsim.config import Config
    from musicsim.model.checkpoint import LoadedModel
    from musicsim.model.embed import Embedder

log = logging.getLogger("musicsim")


class ModelRegistry:
    """The models of one library and the active one's network (loaded on first use)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._loaded: LoadedModel | None = None
        # (old, new) model names when this opening switched the library from a built-in model
        # that this musicsim no longer ships to the one it ships now: its tracks need analysing again
        self.replaced_default: tuple[str, str] | None = None
        self.row: Model = self._ensure_active()

    # --- the active model at opening ---------------------------------------------------------
    # Opening reads rows only: the network (torch, 2-3 s) loads on first use (``loaded``). The
    # shipped default is compared by its checksum read without torch (musicsim.model.peek);
    # torch loads here only when the default has to be registered (a new library, a new
    # built-in model after an upgrade) or the checkpoint cannot be read that way.

    def _ensure_active(self) -> Model:
        with self.db.session() as s:
            row = repo.active_model(s)
        if row is None:
            from musicsim.model.checkpoint import default_model

            self._loaded = default_model()
            return self.register(self._loaded, activate=True)
        if not row.trained and self.db.writable:
            self._offer_default()
        elif row.path is None and self.db.writable:
            row = self._follow_shipped_default(row)
        return row

    def _offer_default(self) -> None:
        """A library still on the untrained seed learns of a shipped trained default (not activated:
        switching means re-analysing every track, the user's choice)."""
        shipped = shipped_default()
        if not shipped.exists():
            return
        checksum = shipped_checksum(shipped)
        if checksum is not None:
            with self.db.session() as s:
                if any(m.checksum == checksum for m in repo.list_models(s)):
                    return  # already offered
        from musicsim.model.checkpoint import default_model

        self.register(default_model())

    def _follow_shipped_default(self, row: Model) -> Model:
        """The active model is the built-in one. If this musicsim ships another (it was upgraded),
        the old weights are gone: the shipped model becomes active and the next scan analyses the
        library's tracks again with it (``replaced_default``). The old model stays listed."""
        shipped = shipped_default()
        if shipped.exists() and shipped_checksum(shipped) == row.checksum:
            return row  # the same built-in model: its network loads on first use
        from musicsim.model.checkpoint import default_model

        loaded = default_model()
        if loaded.checksum == row.checksum:
            self._loaded = loaded  # the active model's network: not read again on first use
            return row
        if not loaded.trained:
            return row
        new = self.register(loaded, activate=True)
        self._loaded = loaded
        self.replaced_default = (row.name, new.name)
        log.warning(
            "this musicsim ships another built-in model (%s instead of %s): it is now active, and the "
            "library's tracks are analysed again with it",
            new.name,
            row.name,
        )
        return new

    # --- registering and switching -----------------------------------------------------------

    def register(self, loaded: LoadedModel, *, activate: bool = False) -> Model:
        from musicsim.model.checkpoint import DEFAULT_RESOURCE

        self.db.require_writer()
        path = None if loaded.path and Path(loaded.path).resolve() == DEFAULT_RESOURCE else loaded.path
        with self.db.session() as s:
            row = repo.register_model(
                s,
                name=loaded.name,
                checksum=loaded.checksum,
                path=path,
                frontend=loaded.frontend.to_dict(),
                config=loaded.config.to_dict(),
                trained=loaded.trained,
                metrics=loaded.metrics,
            )
            if activate:
                repo.set_active(s, row)
            return row

    def by_name(self, name: str) -> Model:
        with self.db.session() as s:
            row = repo.model_by_name(s, name)
        if row is None:
            raise NotFound(f"no model named '{name}' (see `musicsim model list`)")
        return row

    def make_active(self, name: str) -> Model:
        """Mark a known model active in the database, after checking its weights can be loaded."""
        self.db.require_writer()
        self.load(self.by_name(name))  # refuse a model whose weights are gone or changed before switching
        with self.db.session() as s:
            row = repo.model_by_name(s, name)
            if row is None:  # removed by another musicsim meanwhile
                raise NotFound(f"no model named '{name}' (see `musicsim model list`)")
            repo.set_active(s, row)
        return row

    def follow(self, row: Model) -> None:
        """This registry's active model is now ``row`` (already marked active in the database)."""
        self.row = row
        self._loaded = None

    def listing(self) -> list[tuple[str, bool, bool]]:
        """(name, trained, active) of every model this library knows, oldest first."""
        with self.db.session() as s:
            return [(m.name, bool(m.trained), bool(m.active)) for m in repo.list_models(s)]

    # --- the network -------------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel:
        """The active model's network and front end (loaded on first use)."""
        if self._loaded is None or self._loaded.checksum != self.row.checksum:
            self._loaded = self.load(self.row)
        return self._loaded

    def load(self, row: Model) -> LoadedModel:
        preload_torch()
        from musicsim.model.checkpoint import default_model, load_model, untrained_model

        if row.path:
            loaded = load_model(row.path)
            if loaded.checksum != row.checksum:
                raise ModelMismatch(
                    f"the weights of model '{row.name}' changed on disk (checksum {loaded.checksum}, "
                    f"expected {row.checksum})",
                    path=row.path,
                )
            return loaded
        loaded = default_model()
        if loaded.checksum != row.checksum:
            loaded = untrained_model()
        if loaded.checksum != row.checksum:
            raise ModelMismatch(
                f"model '{row.name}' was built into an earlier version of musicsim and is no "
                f"longer shipped; open the library for writing (the app, or `musicsim scan`) "
                f"to switch to the built-in model of this version"
            )
        return loaded

    def embedder(self, config: Config) -> Embedder:
        preload_torch()
        from musicsim.model.embed import Embedder

        return Embedder(self.loaded, device=config.device, batch_size=config.batch_size)


# torch's shared libraries, in dependency order (torch/lib on Linux)
TORCH_LIBRARIES = ("libc10.so", "libtorch_cpu.so", "libtorch.so", "libshm.so", "libtorch_python.so")


def preload_torch() -> None:
    """Load torch's shared libraries before torch is imported, without holding the GIL.

    ``import torch`` dlopens ~450 MB of libraries while holding the GIL, and ctypes.CDLL does
    too: the app's window froze for 0.6-1.6 s while the network loaded in a worker thread.
    dlopen called as a foreign function through ctypes runs with the GIL released; torch's own
    import then finds the libraries loaded. Linux only, best effort: torch loads what is left.
    """
    if not sys.platform.startswith("linux") or "torch" in sys.modules:
        return
    import ctypes
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    dlopen = ctypes.CDLL(None).dlopen  # a foreign call: ctypes releases the GIL around it
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    for name in TORCH_LIBRARIES:
        path = lib / name
        if not path.exists() or not dlopen(os.fsencode(path), RTLD_NOW | ctypes.RTLD_GLOBAL):
            log.debug("preloading %s: not loaded", path)
            return


RTLD_NOW = 2


def shipped_default() -> Path:
    """The shipped model's file, as :data:`musicsim.model.checkpoint.DEFAULT_RESOURCE` says when
    that module is loaded (tests point it elsewhere), else from musicsim.resources (no torch)."""
    checkpoint = sys.modules.get("musicsim.model.checkpoint")
    return Path(checkpoint.DEFAULT_RESOURCE) if checkpoint is not None else resources.default_model()


def shipped_checksum(path: Path) -> str | None:
    """The model checksum of a checkpoint read without torch, or None when that is not possible."""
    from musicsim.model.peek import PeekError, identity

    try:
        return identity(path).checksum
    except PeekError as e:
        log.info("reading %s without torch: %s", path, e)
        return None


def track_dim(row: Model) -> int:
    """The length of a track vector of model ``row``."""
    from musicsim.model.arch import ModelConfig

    config: dict[str, Any] = row.config
    return ModelConfig.from_dict(config).track_dim
