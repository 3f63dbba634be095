"""Issue 28: every file of a real-world corpus is analysed over all of its audio, or fails
with a reason that says what is wrong; the stored duration is the decoded length.

The corpus (tests/robustness/realworld.py) is built with the tools that make such files:
headers that lie or do not know, several streams in one file, MIDI at fine resolutions,
containers that wrap another codec, and files that must fail with a precise reason.
"""

from __future__ import annotations

import logging

import pytest

import musicsim.library.scan as library_scan
from musicsim.cli import main
from musicsim.config import Config
from musicsim.library import Library
from tests.robustness.realworld import LONG

pytestmark = pytest.mark.slow


def _span(result: dict) -> float:
    """Seconds from the first analysed sample to the last (windows count with the gaps between them)."""
    sr = 22050
    last = result["starts"][-1] + len(result["chunks"][-1]) / sr
    return last - result["starts"][0]


@pytest.fixture(scope="module")
def scanned(realworld, tmp_path_factory):
    """The corpus scanned once: (root, cases, db, report, analysed spans, tracks, failures)."""
    root, cases = realworld
    spans: dict[str, tuple[float, int]] = {}
    store = library_scan._store

    def spy(db, index, embedder, entry, result, rep, mel_writer=None):  # sees what the model is given
        spans[entry.path] = (_span(result), len(result["chunks"]))
        return store(db, index, embedder, entry, result, rep, mel_writer)

    db = tmp_path_factory.mktemp("realworld-db") / "lib.db"
    library_scan._store = spy
    try:
        with Library(db, config=Config.load({"workers": 2, "max_seconds": LONG})) as lib:
            rep = lib.scan([str(root)])
            tracks = {t.path: t for t in lib.tracks(status=None)}
            failures = {f.path: f.reason for f in lib.failures()}
    finally:
        library_scan._store = store
    return root, cases, db, rep, spans, tracks, failures


def test_every_file_analysed_whole_or_failed_with_its_reason(scanned):
    root, cases, _db, rep, spans, tracks, failures = scanned
    assert len(cases) >= 40 and rep.found == len(cases)
    problems = []
    for case in cases:
        path = str(case.path)
        if case.seconds is None:
            reason = failures.get(path)
            if reason is None or not all(word in reason.lower() for word in case.reason):
                problems.append(f"{case.name}: expected a failure saying {case.reason}, got {reason or 'analysed'}")
            continue
        if path not in spans:
            problems.append(f"{case.name}: not analysed ({failures.get(path)})")
            continue
        span, windows = spans[path]
        stored = tracks[path].duration or 0.0
        if abs(span - case.seconds) > 0.10 * case.seconds:
            problems.append(f"{case.name}: analysed {span:.1f} s of {case.seconds:.1f} s ({windows} pieces)")
        if abs(stored - case.seconds) > max(0.05 * case.seconds, 1.0):
            problems.append(f"{case.name}: stored duration {stored:.1f} s, real {case.seconds:.1f} s")
        if case.seconds > LONG and windows < 2:
            problems.append(f"{case.name}: {case.seconds:.0f} s analysed whole, not in windows")
    assert not problems, "\n".join(problems)


def test_rescan_analyses_nothing_and_exit_code_counts_the_failures(scanned, capsys):
    root, cases, db, *_ = scanned
    code = main(["--db", str(db), "--max-seconds", str(LONG), "scan", str(root)])
    out = capsys.readouterr().out
    failing = sum(case.seconds is None for case in cases)
    assert f"analysed 0, unchanged {len(cases)}, failed 0" in out
    assert f"{failing} unchanged files still fail" in out and code == 1


def test_decoder_warnings_go_to_the_log_under_the_file_name(realworld, tmp_path, caplog, capfd):
    """libmpg123 prints "Xing stream size off" while libsndfile opens a file: the log gets it, named."""
    from musicsim.scan.pipeline import DecodeParams, analyse_file

    root, cases = realworld
    case = next(c for c in cases if c.name == "mp3/vbr-xing-off")
    result = analyse_file(str(case.path), DecodeParams(22050, 0, 6.0, LONG, None))
    assert result["ok"] and "Xing" not in capfd.readouterr().err
    assert any("Xing" in line for line in result["warnings"]), result["warnings"]
    assert any("decoded with ffmpeg" in line for line in result["warnings"])

    music = tmp_path / "music"
    music.mkdir()
    (music / "song.mp3").write_bytes(case.path.read_bytes())
    with caplog.at_level(logging.INFO, logger="musicsim.decode"):
        with Library(tmp_path / "lib.db", config=Config.load({"workers": 1})) as lib:
            assert lib.scan([str(music)]).analysed == 1
    named = [r.getMessage() for r in caplog.records if r.name == "musicsim.decode"]
    assert any(str(music / "song.mp3") in m and "Xing" in m for m in named), named
