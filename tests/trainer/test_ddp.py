"""``torchrun --nproc_per_node 2 -m trainer`` on CPU (gloo): two processes train one model."""

import os
import subprocess
import sys

import torch

from musicsim.model.checkpoint import read_checkpoint


def test_torchrun_two_cpu_processes(train_library, mel_cache_dir, tmp_path):
    root, _ = train_library
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "trainer",
        str(root),
        "--scratch",
        "--width",
        "4",
        "--embed-dim",
        "16",
        "--segment-frames",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--cache",
        str(mel_cache_dir),
        "--out",
        str(out),
        "--name",
        "ddp",
        "--device",
        "cpu",
        "--workers",
        "1",
        "--threads",
        "1",
        "--val-triplets",
        "32",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("trained ddp:") == 1  # only rank 0 reports and writes
    ck = read_checkpoint(out / "last.pt")
    assert ck["extra"]["world_size"] == 2
    assert "DDP" in ck["card"]["hardware"] and ck["card"]["recipe"].startswith("torchrun --nproc_per_node 2")
    # each process takes its own share of an epoch's anchors: half the steps of one process
    spe = ck["extra"]["steps_per_epoch"]
    n_anchor_segments = ck["card"]["data"]["tracks_train"]  # sanity only: the run covered 2 epochs
    assert ck["step"] == 2 * spe and n_anchor_segments > 0
    exported = read_checkpoint(out / "ddp.pt")
    assert all(torch.isfinite(v).all() for v in exported["model"].values() if v.is_floating_point())
