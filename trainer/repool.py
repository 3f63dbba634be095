"""``python -m trainer.repool SRC DST --pooling P``: the same trained weights, another track vector.

How a track vector is pooled from segment vectors is part of a checkpoint (``model_args.pooling``),
and so of its checksum: a library indexes a re-pooled model as a new model. The weights, front
end, training state and card are kept; the card records the re-pooling, so the model card's
recipe stays one reproducible chain of commands.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timezone

from musicsim.errors import MusicsimError
from musicsim.model.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from musicsim.model.resnet import POOLINGS, ModelConfig


def repool(src: str, dst: str, pooling: str, name: str | None = None) -> dict:
    """Write ``src``'s checkpoint with another pooling (and optionally name) to ``dst``."""
    ckpt = read_checkpoint(src)
    cfg = replace(ModelConfig.from_dict(ckpt["model_args"]), pooling=pooling)  # validates the pooling
    before = model_from_checkpoint(ckpt, path=src)  # the weights fit the architecture
    out = dict(
        ckpt,
        model_args=cfg.to_dict(),
        name=name or ckpt.get("name"),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    card = dict(ckpt.get("card") or {})
    card["repooled"] = {
        "from": before.name,
        "checksum_from": before.checksum,
        "pooling_from": before.config.pooling,
        "pooling": pooling,
    }
    out["card"] = card
    model_from_checkpoint(out)  # refuse to write what would not load
    save_checkpoint(out, dst)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trainer.repool", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="checkpoint to read")
    ap.add_argument("dst", help="checkpoint to write (atomically)")
    ap.add_argument("--pooling", required=True, choices=POOLINGS, help="track-vector pooling of the new checkpoint")
    ap.add_argument("--name", help="model name of the new checkpoint (default: the source's)")
    a = ap.parse_args(argv)
    try:
        out = repool(a.src, a.dst, a.pooling, a.name)
    except MusicsimError as e:
        print(f"python -m trainer.repool: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.dst}: {out['name']}, pooling {a.pooling}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
