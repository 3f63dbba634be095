"""Training throughput and the time to fine-tune a 500-track library.

    python tests/benchmarks/bench_train.py [--device auto|cpu|cuda] [--threads N] [--steps N]
                                          [--model PATH] [--library DIR] [--tracks 500] [--minutes 4]
                                          [--epoch-hours H]

Measures, on generated audio (or ``--library DIR``), with the real training loop of
``trainer.train`` (random crops, augmentation, semi-hard mining, AdamW):

* training throughput in segments/s (each step embeds 3 x batch segments) on CPU (in float32
  and, on a CPU with bf16 in hardware, in the bf16 autocast ``--amp auto`` picks there), and on the
  GPU too when there is one (mixed precision, mel store on the GPU; after a 20-step run that
  takes CUDA's one-off start-up);
* embedding throughput (forward only, segments/s), which bounds re-embedding a library;
* cache-build speed (decode + log-Mel, x real time) with the given workers;
* on a GPU, its utilisation while training (sampled every 0.25 s through NVML, or
  ``nvidia-smi`` where torch has no NVML binding);
* with ``--epoch-hours H``: one real epoch (every segment once as an anchor) over H hours of
  generated audio, timed end to end of the training loop (the issue's target: an epoch over
  10 hours of audio in under a minute on an H100).

From those it *estimates* the time to fine-tune a library of ``--tracks`` tracks of
``--minutes`` minutes each at the default settings (DEFAULT_EPOCHS_FINETUNE epochs, at most
FINETUNE_MAX_STEPS steps: training + re-embedding, plus decoding when the scan did not fill
the mel cache); the estimate is labelled as such. ``bench_finetune_library.py`` measures it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from musicsim.melcache import MelCache  # noqa: E402
from musicsim.model.checkpoint import DEFAULT_RESOURCE, default_model, load_model  # noqa: E402
from musicsim.model.embed import device_name  # noqa: E402
from trainer.options import DEFAULT_EPOCHS_FINETUNE, FINETUNE_MAX_STEPS  # noqa: E402
from trainer.train import TrainOptions, cpu_bf16_native, train  # noqa: E402


def make_audio(root: Path, n: int, seconds: float) -> list[str]:
    from tests.fixtures.generate import FAMILIES, synth, write_audio

    out = []
    for i in range(n):
        fam = FAMILIES[i % len(FAMILIES)]
        out.append(str(write_audio(root / fam / f"{fam}_{i}.wav", synth(fam, seconds=seconds, variant=i))))
    return out


class GpuUtilisation:
    """Samples the GPU's utilisation (percent busy) in a thread while a block runs."""

    def __init__(self, device: str, every: float = 0.25):
        import threading

        self.samples: list[float] = []
        self.every = every
        self.index = None
        self.source = None
        if device.startswith("cuda") and torch.cuda.is_available():
            self.index = torch.device(device).index
            self.index = torch.cuda.current_device() if self.index is None else self.index
            self.source = self._probe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if self.source else None

    def _probe(self) -> str | None:
        try:
            torch.cuda.utilization(self.index)
            return "nvml"
        except Exception:  # no pynvml binding: ask the driver's tool
            return "nvidia-smi" if self._smi() is not None else None

    def _smi(self) -> float | None:
        import subprocess

        try:
            out = subprocess.run(
                ["nvidia-smi", "-i", str(self.index), "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            return float(out.stdout.strip().splitlines()[0])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            v = float(torch.cuda.utilization(self.index)) if self.source == "nvml" else self._smi()
            if v is not None:
                self.samples.append(v)

    def __enter__(self):
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread:
            self._stop.set()
            self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "GPU utilisation: not measured" + ("" if self.source else " (no CUDA device or no NVML/nvidia-smi)")
        busy = sorted(self.samples)
        return (
            f"GPU utilisation ({self.source}, {len(busy)} samples): mean {sum(busy) / len(busy):.0f}%, "
            f"median {busy[len(busy) // 2]:.0f}%"
        )


def bench_train(
    folders: list[str],
    cache: str,
    device: str,
    steps: int | None,
    init: str | None,
    batch: int,
    epochs: int | None = None,
    amp: str = "auto",
) -> dict:
    from musicsim.jobs import Progress

    marks: dict[str, float] = {}

    def progress(p: Progress) -> None:  # the training loop's span: the report before step 1 to the last step
        now = time.perf_counter()
        if p.stage == "train":
            marks["end"] = now
        elif "end" not in marks:
            marks["start"] = now

    def options(out: str, steps: int | None, epochs: int | None) -> TrainOptions:
        return TrainOptions(
            folders=folders,
            init=init or "default",
            cache=cache,
            out=out,
            device=device,
            steps=steps,
            epochs=epochs,
            batch_size=batch,
            val_fraction=0.0,
            workers=2,
            name="bench",
            amp=amp,
        )

    if device.startswith("cuda"):
        # CUDA's context, cuDNN's algorithm search and the caching allocator's first blocks cost
        # a second or two once per process: a short run first keeps them out of the figures.
        with tempfile.TemporaryDirectory() as out:
            train(options(out, 20, None))
    with tempfile.TemporaryDirectory() as out, GpuUtilisation(device) as gpu:
        opts = options(out, steps, epochs)
        t = time.perf_counter()
        res = train(opts, progress=progress)
        wall = time.perf_counter() - t
    rows = [h for h in res.history if h.get("segments_per_s")]
    return {
        "segments_per_s": rows[-1]["segments_per_s"] if rows else float("nan"),
        "steps": res.steps,
        "wall": wall,
        "loop_s": marks.get("end", t) - marks.get("start", t),
        "gpu": gpu.summary(),
    }


@torch.inference_mode()
def bench_embed(device: str, model_path: str | None, n: int = 1024) -> float:
    from musicsim.model.embed import best_device

    lm = load_model(model_path) if model_path else default_model()
    dev = best_device(device)
    m = lm.model.to(dev).eval()
    x = torch.randn(256, 1, lm.frontend.n_mels, lm.frontend.segment_frames, device=dev)
    m(x)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n // 256):
        m(x)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t)


def bench_epoch(tmp: Path, hours: float, device: str, model_path: str | None, batch: int, fe) -> None:
    """One measured epoch over ``hours`` of generated audio in 4-minute tracks."""
    n = max(8, round(hours * 15))
    root = tmp / "epoch"
    t = time.perf_counter()
    paths = make_audio(root, n, hours * 3600 / n)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    found, _ = MelCache(str(tmp / "epoch-cache"), fe).build(paths, workers=max(1, min(16, os.cpu_count() or 1)))
    build_s = time.perf_counter() - t
    tr = bench_train([str(root)], str(tmp / "epoch-cache"), device, None, model_path, batch, epochs=1)
    name = device_name(torch.device(device))
    print(
        f"\n[{name}] one epoch over {hours:g} h of audio ({len(found)} tracks; generated in {gen_s:.0f} s, "
        f"cached in {build_s:.0f} s): {tr['steps']} steps of {batch} triplets in {tr['loop_s']:.1f} s of training "
        f"({tr['wall']:.1f} s with loading the cache and the model), {tr['segments_per_s']:.0f} segments/s; "
        f"{tr['gpu']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=TrainOptions().batch_size)
    ap.add_argument("--model", help="checkpoint to fine-tune (default: the shipped model)")
    ap.add_argument("--library", help="measure on this folder instead of generated audio")
    ap.add_argument("--tracks", type=int, default=500)
    ap.add_argument("--minutes", type=float, default=4.0, help="mean track length assumed by the estimate")
    ap.add_argument("--epoch-hours", type=float, help="also time one epoch over this many hours of generated audio")
    ap.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "bf16", "fp16", "off"),
        help="training precision (auto on a CPU with bf16 in hardware: both float32 and bf16)",
    )
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    model_path = a.model or (str(DEFAULT_RESOURCE) if DEFAULT_RESOURCE.exists() else None)
    lm = load_model(model_path) if model_path else default_model()
    fe = lm.frontend
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MUSICSIM_HOME", tmp)
        if a.library:
            folders = [a.library]
            from musicsim.scan.walker import walk

            paths = [e.path for e in walk(folders)]
        else:
            paths = make_audio(Path(tmp) / "music", 16, 60.0)
            folders = [str(Path(tmp) / "music")]
        cache = str(Path(tmp) / "cache")
        t = time.perf_counter()
        found, _ = MelCache(cache, fe).build(paths, workers=2)
        build_s = time.perf_counter() - t
        audio_s = sum(c.mel.shape[1] for c in found.values()) * fe.hop_length / fe.sr
        devices = ["cpu"] if a.device == "cpu" else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
        if a.device not in ("auto", "cpu"):
            devices = [a.device]
        print(
            f"model: {lm.name} (width {lm.config.width}, {sum(p.numel() for p in lm.model.parameters()) / 1e6:.2f} M "
            f"parameters), batch {a.batch_size} triplets, torch {torch.__version__}, {os.cpu_count()} CPUs, "
            f"{torch.get_num_threads()} threads"
        )
        print(
            f"cache build: {len(found)} tracks, {audio_s / 60:.1f} min of audio in {build_s:.1f} s "
            f"({audio_s / build_s:.0f}x real time, 2 workers)"
        )
        results = {}
        for dev in devices:
            emb = bench_embed(dev, model_path)
            # on a CPU with bf16 in hardware, float32 and the bf16 autocast that --amp auto picks, in one run
            amps = [a.amp] if a.amp != "auto" or dev != "cpu" or not cpu_bf16_native() else ["off", "bf16"]
            for amp in amps:
                tr = bench_train(folders, cache, dev, a.steps, model_path, a.batch_size, amp=amp)
                precision = "" if len(amps) == 1 else "float32" if amp == "off" else amp
                results[f"{dev} ({precision})" if precision else dev] = (tr, emb)
                name = device_name(torch.device(dev)) + (f", {precision}" if precision else "")
                print(
                    f"[{name}] training: {tr['segments_per_s']:.0f} segments/s ({tr['segments_per_s'] / 3:.0f} "
                    f"triplets/s, {tr['steps']} steps); embedding (float32): {emb:.0f} segments/s; {tr['gpu']}"
                )
        if a.epoch_hours:
            bench_epoch(Path(tmp), a.epoch_hours, devices[-1], model_path, a.batch_size, fe)
        seg_s = fe.segment_frames * fe.hop_length / fe.sr
        n_seg = a.tracks * a.minutes * 60 / seg_s
        print(
            f"\nESTIMATE (from the throughputs above) for fine-tuning a {a.tracks}-track library of "
            f"{a.minutes:g}-minute tracks ({n_seg:.0f} segments) at default settings "
            f"({DEFAULT_EPOCHS_FINETUNE} epochs but at most {FINETUNE_MAX_STEPS} steps of {a.batch_size} triplets = "
            f"3 x {a.batch_size} segments embedded per step); bench_finetune_library.py measures it end to end:"
        )
        for dev, (tr, emb) in results.items():
            t_cache = a.tracks * a.minutes * 60 / (audio_s / build_s)
            n_steps = min(FINETUNE_MAX_STEPS, DEFAULT_EPOCHS_FINETUNE * math.ceil(n_seg / a.batch_size))
            t_train = n_steps * 3 * a.batch_size / tr["segments_per_s"]
            t_embed = n_seg / emb
            print(
                f"  {dev}: training {t_train / 60:.1f} min + re-embedding {t_embed / 60:.1f} min = "
                f"{(t_train + t_embed) / 60:.1f} min for a scanned library (the scan filled the mel cache); "
                f"+ {t_cache / 60:.1f} min of decoding when it did not"
            )


if __name__ == "__main__":
    main()
