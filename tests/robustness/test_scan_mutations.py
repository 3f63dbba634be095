"""Files deleted, replaced, emptied, swapped for a FIFO or folder, or growing while a scan runs.

The scan's own progress callback does the damage to files that are queued but not yet
handed to a decoder (the walk already recorded their size), and a thread keeps appending
MP3 frames to one file for the whole scan.
"""

from __future__ import annotations

import os
import threading

from musicsim.config import Config
from musicsim.library import Library
from tests.fixtures.generate import synth, write_audio
from tests.robustness.helpers import assert_db_healthy, assert_index_matches, snapshot, time_limit


def _mp3_frames(path) -> bytes:
    data = path.read_bytes()
    if data[:3] == b"ID3":
        data = data[10 + int.from_bytes(data[6:10], "big") :]
    return data


def test_files_change_while_being_scanned(tmp_path):
    music = tmp_path / "music"
    for i in range(4):  # decoded first, left alone
        write_audio(music / f"a{i:02d}.wav", synth("sine", seconds=1.0, variant=i))
    victims = {
        n: write_audio(music / n, synth("chord", seconds=1.0, variant=k))
        for k, n in enumerate(
            (
                "b_deleted.wav",
                "c_text.wav",
                "d_replaced.wav",
                "e_grown.wav",
                "f_emptied.wav",
                "g_fifo.wav",
                "h_folder.wav",
                "i_swapped.mp3",
                "k_locked.wav",
            )
        )
    }
    live = write_audio(music / "j_live.mp3", synth("clicks", seconds=1.0))
    frames = _mp3_frames(write_audio(tmp_path / "frames.mp3", synth("noise", seconds=2.0)))
    flac = write_audio(tmp_path / "other.flac", synth("noise", seconds=1.5))
    write_audio(music / "z_last.wav", synth("clicks", seconds=1.0, variant=3))
    bystanders = {"a00.wav", "a01.wav", "a02.wav", "a03.wav", "z_last.wav"}
    before = snapshot(music)

    stop = threading.Event()

    def grow() -> None:  # j_live.mp3 keeps growing until the scan is over
        with open(live, "ab") as f:
            while not stop.wait(0.005):
                f.write(frames[:4096])
                f.flush()

    done = []

    def damage(p) -> None:
        if p.stage != "scan" or done:
            return
        done.append(p.current)
        os.unlink(victims["b_deleted.wav"])
        victims["c_text.wav"].write_text("this is not music any more\n")
        fresh = tmp_path / "fresh.wav"
        write_audio(fresh, synth("noise", seconds=2.0, variant=9))
        os.replace(fresh, victims["d_replaced.wav"])  # new inode, new size
        with open(victims["e_grown.wav"], "ab") as f:
            f.write(os.urandom(1 << 20))
        open(victims["f_emptied.wav"], "wb").close()
        os.unlink(victims["g_fifo.wav"])
        os.mkfifo(victims["g_fifo.wav"])
        os.unlink(victims["h_folder.wav"])
        os.mkdir(victims["h_folder.wav"])
        victims["i_swapped.mp3"].write_bytes(flac.read_bytes())
        os.chmod(victims["k_locked.wav"], 0)

    grower = threading.Thread(target=grow, daemon=True)
    grower.start()
    db = tmp_path / "lib.db"
    try:
        with time_limit(240), Library(db, config=Config.load({"workers": 2})) as lib:
            rep = lib.scan([str(music)], progress=damage)
    finally:
        stop.set()
        grower.join()
        os.chmod(victims["k_locked.wav"], 0o644)
    assert done and done[0].startswith("a0"), done  # the damage came after a first file, before the victims
    assert rep.found == 15 and rep.analysed + rep.failed == 15, rep
    reasons = {os.path.basename(p): r for p, r in rep.failures}
    assert all("\n" not in r for r in reasons.values())
    assert "not found" in reasons["b_deleted.wav"]
    assert "text" in reasons["c_text.wav"]
    assert "empty" in reasons["f_emptied.wav"]
    assert "regular file" in reasons["g_fifo.wav"]
    assert "directory" in reasons["h_folder.wav"]
    assert "d_replaced.wav" not in reasons  # a replaced file is simply the new file
    assert not bystanders & set(reasons)
    assert not any(r.startswith("unexpected") for r in reasons.values()), reasons

    assert_db_healthy(db)
    assert_index_matches(db)
    after = snapshot(music)
    for name in bystanders:
        assert after[name.encode()] == before[name.encode()]

    # The next scan notices what changed since the walk and settles; nothing is duplicated.
    os.rmdir(victims["h_folder.wav"])
    os.unlink(victims["g_fifo.wav"])
    with time_limit(240), Library(db, config=Config.load({"workers": 2})) as lib:
        again = lib.scan([str(music)])
        paths = {os.path.basename(t.path) for t in lib.tracks()}
        assert lib.status()["indexed"] == len(paths)
    assert {"d_replaced.wav", "e_grown.wav", "j_live.mp3"} <= paths | {os.path.basename(p) for p, _ in again.failures}
    assert again.analysed >= 2  # d_replaced and e_grown at least: their size changed after the walk
    assert "b_deleted.wav" not in paths
    h = assert_db_healthy(db)
    assert h["tracks"] == len(paths)
    assert_index_matches(db)
