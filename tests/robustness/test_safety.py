"""musicsim never writes to, moves or deletes music; SQL is never formatted; checkpoints are
loaded weights-only; odd paths are stored and found exactly; playlists are never followed."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from musicsim.cli import main
from musicsim.library import Library
from musicsim.organize.playlists import read_m3u, read_xspf
from tests.fixtures.generate import FAMILIES
from tests.robustness.conftest import ODD_NAMES, odd_family
from tests.robustness.helpers import REPO, assert_db_healthy, assert_same_tree, snapshot, time_limit


def _library_paths(db) -> set[str]:
    with Library(db, writable=False) as lib:
        return {t.path for t in lib.tracks()}


def _active_model(db) -> str:
    with Library(db, writable=False) as lib:
        return lib.model_row.name


def _check_whole_library_playlist(db, seed: int, playlist: list[str]) -> None:
    """A playlist asked for more tracks than the library has holds every track but the seed,
    except a track within the duplicate threshold of the seed or of a track in it (which of
    these synthetic tones sound the same is the model's call)."""
    with Library(db, writable=False) as lib:
        ids, X = lib.embeddings()
        paths = {t.id: t.path for t in lib.tracks()}
        max_sim = 1.0 - lib.organizer.dup_threshold()
    vec = {paths[int(i)]: X[k] for k, i in enumerate(ids)}
    seed_path = paths[seed]
    assert len(vec) == len(paths) and seed_path not in playlist and len(set(playlist)) == len(playlist)
    kept = [seed_path, *playlist]
    for i, a in enumerate(kept):
        assert all(float(vec[a] @ vec[b]) <= max_sim for b in kept[i + 1 :]), a  # no near-duplicates in it
    missing = set(vec) - set(kept)
    assert all(any(float(vec[m] @ vec[k]) > max_sim for k in kept) for m in missing), missing
    # not vacuous: every family of tones is in it (which tones within a family sound the same
    # is the model's call, and which track is the seed depends on the scan's order)
    assert {_family(p) for p in kept} == set(FAMILIES), kept


def _family(path: str) -> str:
    p = Path(path)
    return odd_family(p.name) if p.parent.name == "odd" else p.parent.name


def test_no_cli_command_touches_the_music(small_library, tmp_path, capsys):
    music, db = small_library
    out = tmp_path / "out"
    out.mkdir()
    odd = str(music / "odd" / ODD_NAMES[0])
    commands = [
        ["scan", str(music)],
        ["scan", "--retry-failed", str(music / "sine"), str(music / "odd" / ODD_NAMES[1])],
        ["status"],
        ["similar", odd],
        ["similar", "2", "-n", "3", "--json"],
        ["export", "--out", str(out / "e.npz")],
        ["export", "--out", str(out / "e.csv")],
        ["failures"],
        ["playlist", "--seed", "1", "-n", "6", "--out", str(out / "p.m3u8")],
        [
            "playlist",
            "--seed",
            odd,
            "--seed",
            "3",
            "-n",
            "6",
            "--smooth",
            "--no-same-album",
            "--out",
            str(out / "p.xspf"),
        ],
        ["playlist", "--seed", "4", "-n", "20", "--relative", "--out", str(out / "rel.m3u8")],
        ["sort", str(out / "p.m3u8"), "--out", str(out / "sorted.m3u8")],
        ["sort", str(out / "p.xspf"), "--seed", "1", "--out", str(out / "sorted.xspf")],
        ["path", "1", "5", "-n", "4", "--out", str(out / "path.m3u8")],
        ["clusters", "-k", "3"],
        ["clusters", "--json"],
        ["outliers", "-n", "3"],
        ["duplicates"],
        ["model", "list"],
        ["model", "use", _active_model(db)],
        ["purge"],
    ]
    before = snapshot(music)
    library = _library_paths(db)
    for args in commands:
        capsys.readouterr()
        rc = main(["--db", str(db), *args])
        err = capsys.readouterr().err
        assert rc == 0, (args, err)
        assert_same_tree(before, snapshot(music), f"music after `musicsim {' '.join(args)}`")
    # Exported playlists name only library tracks; every one of them is a track.
    for name in ("p.m3u8", "p.xspf", "rel.m3u8", "sorted.m3u8", "sorted.xspf", "path.m3u8"):
        entries = (read_xspf if name.endswith(".xspf") else read_m3u)(out / name)
        assert entries and {str(p) for p in entries} <= library, name
    # 20 asked of 13 tracks: every track but the seed, except near-duplicates of one already in
    # it (the model decides which of these synthetic tones sound the same)
    _check_whole_library_playlist(db, 4, [str(p) for p in read_m3u(out / "rel.m3u8")])
    assert_db_healthy(db)


def test_odd_paths_are_stored_and_found_exactly(small_library, capsys):
    music, db = small_library
    for name in ODD_NAMES:
        path = str(music / "odd" / name)
        capsys.readouterr()
        assert main(["--db", str(db), "similar", path, "-n", "2", "--json"]) == 0, name
        seed = json.loads(capsys.readouterr().out)["seed"]
        assert seed["path"] == path
    with Library(db, writable=False) as lib:
        for name in ODD_NAMES:
            assert [t.path for t in lib.resolve(str(music / "odd" / name))] == [str(music / "odd" / name)]


def test_playlists_with_newlines_in_paths_round_trip(small_library, tmp_path, capsys):
    music, db = small_library
    newline = next(n for n in ODD_NAMES if "\n" in n)
    out = tmp_path / "nl.m3u8"
    assert (
        main(["--db", str(db), "playlist", "--seed", str(music / "odd" / newline), "-n", "12", "--out", str(out)]) == 0
    )
    assert main(["--db", str(db), "sort", str(out), "--seed", str(music / "odd" / newline), "--out", str(out)]) == 0
    entries = [str(p) for p in read_m3u(out)]
    assert str(music / "odd" / newline) in entries and set(entries) <= _library_paths(db)


def _special_files(tmp_path) -> list[str]:
    fifo = tmp_path / "pipe.mp3"
    os.mkfifo(fifo)
    (tmp_path / "folder.mp3").mkdir()
    return [
        str(fifo),
        "/dev/zero",
        "/dev/urandom",
        "/dev/stdin",
        str(tmp_path / "folder.mp3"),
        str(tmp_path / "missing.mp3"),
        "/proc/self/mem",
    ]


def test_playlist_import_never_opens_listed_files(small_library, tmp_path, capsys):
    music, db = small_library
    listed = _special_files(tmp_path)
    track = str(music / "odd" / ODD_NAMES[2])
    m3u = tmp_path / "evil.m3u8"
    m3u.write_text("#EXTM3U\n" + "\n".join(listed + [track]) + "\n", encoding="utf-8")
    xspf = tmp_path / "evil.xspf"
    xspf.write_text(
        '<?xml version="1.0"?><playlist version="1" xmlns="http://xspf.org/ns/0/"><trackList>'
        + "".join(f"<track><location>{Path(p).as_uri()}</location></track>" for p in listed + [track])
        + "</trackList></playlist>",
        encoding="utf-8",
    )
    with time_limit(20):  # opening the FIFO or reading /dev/zero would never return
        assert [str(p) for p in read_m3u(m3u)] == listed + [track]
        assert [str(p) for p in read_xspf(xspf)] == listed + [track]
        for pl in (m3u, xspf):
            capsys.readouterr()
            rc = main(["--db", str(db), "sort", str(pl), "--out", str(tmp_path / f"out{pl.suffix}")])
            err = capsys.readouterr().err
            assert rc == 1, err  # some entries are not library tracks: left out, said so
            assert all(f"left out: {p}" in err for p in listed)
    out = read_m3u(tmp_path / "out.m3u8")
    assert [str(p) for p in out] == [track]


# ----------------------------------------------------------------------------- source checks


def _calls(tree, names: set[str]):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in names:
                yield node


def _formatted(node) -> bool:
    return (
        isinstance(node, ast.JoinedStr)
        or (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)))
        or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format")
    )


def _allowed_pragma(node) -> bool:
    """``f"PRAGMA user_version={int(v)}"``: an integer, not text, is formatted."""
    if not isinstance(node, ast.JoinedStr) or len(node.values) != 2:
        return False
    lit, val = node.values
    return (
        isinstance(lit, ast.Constant)
        and lit.value == "PRAGMA user_version="
        and isinstance(val, ast.FormattedValue)
        and isinstance(val.value, ast.Call)
        and getattr(val.value.func, "id", None) == "int"
    )


def _sources():
    files = sorted((REPO / "musicsim").rglob("*.py")) + sorted((REPO / "trainer").rglob("*.py"))
    return [(p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p))) for p in files]


def test_no_sql_is_built_by_string_formatting():
    sql_calls = {"execute", "executemany", "executescript", "exec_driver_sql", "text"}
    bad, seen = [], 0
    for path, tree in _sources():
        for call in _calls(tree, sql_calls):
            seen += 1
            for arg in call.args[:1]:
                if _formatted(arg) and not _allowed_pragma(arg):
                    bad.append(f"{path.relative_to(REPO)}:{call.lineno}: {ast.unparse(arg)[:80]}")
    assert seen > 10  # the check does look at the database code
    assert not bad, "\n".join(bad)


def test_every_torch_load_is_weights_only():
    loads = []
    for path, tree in _sources():
        for call in _calls(tree, {"load"}):
            func = call.func
            if isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in call.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                loads.append((f"{path.relative_to(REPO)}:{call.lineno}", ok))
    assert loads and all(ok for _, ok in loads), loads


# ----------------------------------------------------------------------------- checkpoints


class _Payload:
    """Pickles to a call of exec(): what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_unsafe_or_mismatched_checkpoints_are_refused_through_cli(small_library, tmp_path, capsys):
    import torch

    from musicsim.audio.features import FrontEnd
    from musicsim.model.checkpoint import load_model, make_checkpoint, save_checkpoint
    from musicsim.model.resnet import ModelConfig, build_model

    music, db = small_library
    ckpt = tmp_path / "other.pt"
    save_checkpoint(make_checkpoint(build_model(ModelConfig(), seed=1), FrontEnd(), name="other"), ckpt)
    with Library(db) as lib:
        first_active = lib.model_row.name
        lib.register(load_model(ckpt))
    marker = tmp_path / "pwned"
    bad_fe = make_checkpoint(build_model(ModelConfig(), seed=1), FrontEnd(), name="other")
    bad_fe["frontend"]["n_bark"] = 24
    cases = [
        (
            "carries code",
            lambda: torch.save({"format": "musicsim-checkpoint", "model": _Payload(marker)}, ckpt),
            "not a safe musicsim checkpoint",
        ),
        (
            "other weights under the registered name",
            lambda: save_checkpoint(
                make_checkpoint(build_model(ModelConfig(), seed=2), FrontEnd(), name="other"), ckpt
            ),
            "changed on disk",
        ),
        ("a front end this musicsim does not know", lambda: save_checkpoint(bad_fe, ckpt), "front-end"),
    ]
    for what, write, words in cases:
        write()
        capsys.readouterr()
        rc = main(["--db", str(db), "model", "use", "other"])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert rc == 1 and len(err) == 1 and words in err[0], (what, err)
    assert not marker.exists()
    with Library(db, writable=False) as lib:
        assert [n for n, _, active in lib.models() if active] == [first_active]
