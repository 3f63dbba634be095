"""The shape of the ``musicsim`` command line: one command signature, a working ``--help`` for every
subcommand, errors mapped to exit codes in one place, and a light start-up."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from musicsim import cli
from musicsim.cli import common
from musicsim.cli.common import Command
from musicsim.errors import LibraryBusy, NotFound
from musicsim.library import Library

CLI_DIR = Path(cli.__file__).parent
NAMES = [c.name for c in cli.SUBCOMMANDS]


@pytest.mark.parametrize("command", cli.COMMANDS.values(), ids=list(cli.COMMANDS))
def test_every_command_has_the_one_signature(command):
    assert isinstance(command, Command)
    params = inspect.signature(command.run).parameters
    assert list(params) == ["lib", "args"], command.name
    hints = typing.get_type_hints(command.run, localns={"Library": Library, "argparse": argparse})
    assert hints == {"lib": Library, "args": argparse.Namespace, "return": int}, command.name


def test_every_subcommand_is_registered_once_in_the_order_of_the_help():
    assert len(NAMES) == len(set(NAMES))
    assert set(cli.COMMANDS) | {"gui", "evaluate", "install-desktop"} == set(NAMES)
    listed = cli.build_parser().format_help()
    positions = [re.search(rf"\n    {re.escape(name)}[ \n]", listed).start() for name in NAMES]
    assert positions == sorted(positions)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "evaluate"])
def test_every_subcommand_has_a_help(name, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([name, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: musicsim {name} ")


def test_evaluate_help_is_the_trainers(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", "--help"])
    assert stop.value.code == 0
    assert "usage: python -m trainer.evaluate" in capsys.readouterr().out


def test_common_imports_no_command_module():
    tree = ast.parse((CLI_DIR / "common.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("musicsim.cli")}, imported


def test_command_line_starts_without_qt_torch_or_the_database_layer():
    code = "import sys, musicsim.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for heavy in ("PySide6", "torch", "sqlalchemy", "numpy", "trainer"):
        assert f"'{heavy}'" not in loaded, heavy


# --- running a command: the library it opens and the exit codes --------------------------------


class _StubLibrary:
    """What execute() needs of a library: a context manager that knows whether it is trained."""

    trained = True

    def __init__(self, writable: bool) -> None:
        self.writable = writable

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


@pytest.fixture
def opened(monkeypatch):
    """Each library opening of execute(), as the writable flag it was opened with."""
    seen: list[bool] = []

    def fake_open(args, *, writable):
        seen.append(writable)
        return _StubLibrary(writable)

    monkeypatch.setattr(common, "open_library", fake_open)
    return seen


def _raising(exc: BaseException) -> Command:
    def run(lib: Library, args: argparse.Namespace) -> int:
        raise exc

    return Command("boom", "raises", run)


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (NotFound("no track matches 'x'"), 2, "musicsim: no track matches 'x'"),
        (LibraryBusy("another musicsim is scanning"), 1, "musicsim: error: another musicsim is scanning"),
        (
            PermissionError(13, "Permission denied", "/music/a\nb.flac"),
            1,
            "musicsim: error: /music/a\\nb.flac: Permission denied",
        ),
        (KeyboardInterrupt(), 130, "musicsim: interrupted; finished tracks are saved"),
    ],
    ids=["not-found", "musicsim-error", "os-error", "interrupt"],
)
def test_errors_become_one_line_and_an_exit_code(opened, capsys, exc, code, message):
    assert common.execute(_raising(exc), argparse.Namespace()) == code
    assert capsys.readouterr().err.strip().splitlines() == [message]


def test_other_exceptions_are_not_swallowed(opened):
    with pytest.raises(ZeroDivisionError):
        common.execute(_raising(ZeroDivisionError()), argparse.Namespace())


def test_each_command_opens_the_library_as_it_needs(opened):
    ran = []

    def run(lib: Library, args: argparse.Namespace) -> int:
        ran.append(lib.writable)
        return 0

    reader, writer = Command("r", "reads", run), Command("w", "writes", run, writes=True)
    assert common.execute(reader, argparse.Namespace()) == 0
    assert common.execute(writer, argparse.Namespace()) == 0
    assert opened == ran == [False, True]
    model = cli.COMMANDS["model"]
    assert not model.writable(argparse.Namespace(action="list", name=None))
    assert model.writable(argparse.Namespace(action="use", name="x"))


def test_model_use_without_a_name_is_a_usage_error_before_anything_opens(tmp_path, capsys):
    db = tmp_path / "lib.db"
    assert cli.main(["--db", str(db), "model", "use"]) == 2
    assert capsys.readouterr().err.strip() == "musicsim: model use needs a NAME (see `musicsim model list`)"
    assert not db.exists()


def test_printable_escapes_control_characters():
    assert common.printable("a\nb\tc\x1b") == "a\\nb\\tc\\x1b"
    assert common.printable(Path("é ü")) == "é ü"
