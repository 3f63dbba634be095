"""Checkpoints: one dict that rebuilds its exact encoder (nanoGPT's habit).

Keys: ``format``, ``version``, ``name``, ``model_args`` (ModelConfig), ``frontend``
(FrontEnd), ``model`` (state dict), ``optimizer`` (state dict or None), ``step``, ``epoch``,
``metrics``, ``trained``, ``card`` (free-form dict: data, recipe, figures).
Loading always uses ``torch.load(weights_only=True)``: a file carrying code is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from musicsim import resources
from musicsim.audio.features import FrontEnd
from musicsim.errors import CheckpointError, ModelMismatch
from musicsim.fsutil import atomic_write
from musicsim.model.resnet import ModelConfig, ResNetEmbedding, build_model

FORMAT = "musicsim-checkpoint"
VERSION = 1
UNTRAINED_SEED = 0
DEFAULT_RESOURCE = resources.default_model()  # the checkout's resources/ or the installed copy


@dataclass
class LoadedModel:
    """A ready encoder with everything needed to index consistently with it."""

    name: str
    model: ResNetEmbedding
    config: ModelConfig
    frontend: FrontEnd
    trained: bool
    checksum: str
    path: str | None = None
    metrics: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)


def weights_checksum(state: dict) -> str:
    """SHA-256 (first 16 hex) over the weights, so a model is identified by what it computes."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        h.update(key.encode())
        if isinstance(t, torch.Tensor):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def model_checksum(state: dict, cfg: ModelConfig) -> str:
    """Identifies what a model stores: its weights, and its pooling when that is not the plain
    mean (so checksums of older, mean-pooled models are unchanged). The same weights pooled
    another way give other track vectors, hence another index."""
    w = weights_checksum(state)
    if cfg.pooling == "mean":
        return w
    return hashlib.sha256(f"{w}:pooling={cfg.pooling}".encode()).hexdigest()[:16]


def make_checkpoint(
    model: ResNetEmbedding,
    frontend: FrontEnd,
    *,
    name: str,
    optimizer: dict | None = None,
    step: int = 0,
    epoch: int = 0,
    metrics: dict | None = None,
    trained: bool = True,
    card: dict | None = None,
    extra: dict | None = None,
) -> dict:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_args": model.cfg.to_dict(),
        "frontend": frontend.to_dict(),
        "model": state,
        "optimizer": optimizer,
        "step": int(step),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
        "trained": bool(trained),
        "card": dict(card or {}),
        "extra": dict(extra or {}),
    }


def save_checkpoint(ckpt: dict, path: str | os.PathLike) -> Path:
    """Write atomically: a crash mid-write leaves the previous file intact.

    Serialised in memory first: torch.save writes through its own C++ writer while holding
    the GIL, so a write that blocks on a busy disk would freeze every thread (the app's
    window too); Python's own file write lets them run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    data = buf.getbuffer()
    return atomic_write(path, lambda fh: fh.write(data))


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load the raw dict safely; raise CheckpointError with a one-line reason."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError("checkpoint file not found", path=path) from None
    except Exception as e:  # pickle.UnpicklingError for code-carrying files, zip errors...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"not a safe musicsim checkpoint ({first[:160]})", path=path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError("not a musicsim checkpoint", path=path)
    if int(ckpt.get("version", 0)) > VERSION:
        raise CheckpointError(f"checkpoint version {ckpt.get('version')} is newer than this musicsim", path=path)
    for key in ("model_args", "frontend", "model"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint lacks '{key}'", path=path)
    return ckpt


def model_from_checkpoint(ckpt: dict, *, path: str | None = None) -> LoadedModel:
    cfg = ModelConfig.from_dict(ckpt["model_args"])
    fe = FrontEnd.from_dict(ckpt["frontend"])
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ModelMismatch(
            f"weights do not fit the stored architecture: {str(e).splitlines()[0]}", path=path
        ) from None
    model.eval()
    return LoadedModel(
        name=str(ckpt.get("name") or (Path(path).stem if path else "model")),
        model=model,
        config=cfg,
        frontend=fe,
        trained=bool(ckpt.get("trained", True)),
        checksum=model_checksum(ckpt["model"], cfg),
        path=str(path) if path else None,
        metrics=dict(ckpt.get("metrics") or {}),
        card=dict(ckpt.get("card") or {}),
    )


def load_model(path: str | os.PathLike) -> LoadedModel:
    return model_from_checkpoint(read_checkpoint(path), path=str(path))


def untrained_model(cfg: ModelConfig | None = None, fe: FrontEnd | None = None) -> LoadedModel:
    """Seeded, untrained weights: usable for indexing, but similarity is only rough."""
    cfg = cfg or ModelConfig()
    fe = fe or FrontEnd()
    model = build_model(cfg, seed=UNTRAINED_SEED).eval()
    ckpt = make_checkpoint(model, fe, name=f"untrained-seed{UNTRAINED_SEED}", trained=False)
    return model_from_checkpoint(ckpt)


def default_model() -> LoadedModel:
    """The shipped trained model, or seeded untrained weights until one ships."""
    if DEFAULT_RESOURCE.exists():
        return load_model(DEFAULT_RESOURCE)
    return untrained_model()
