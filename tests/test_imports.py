"""The import graph of musicsim/ and trainer/: no circles, and the layers keep their distance.

Every import counts, wherever it stands: at the top of a module, inside a function (a lazy
import is still a dependency) and under ``TYPE_CHECKING`` (a type-only loop is still a loop
in the design). Each import is resolved to the module it names: ``from a.b import c`` is
``a.b.c`` when that is a module or package, else ``a.b``; a package means its ``__init__``.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("musicsim", "trainer")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported (ours resolved to a module of the tree; others as written)
    where: str  # file:line, for messages

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name: str) -> str:
    """Ours: the longest prefix of ``name`` that is a module of the tree; others: ``name``."""
    known = modules()
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return name
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return name


def _targets(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The modules one import statement of ``module`` names (resolved when they are ours)."""
    if isinstance(node, ast.Import):
        return [_resolve(alias.name) for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: from the module's package, one package up per extra dot
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    # `from a.b import c`: the submodule a.b.c when there is one, else a.b itself.
    return [_resolve(f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base) for a in node.names]


def _imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(REPO).as_posix()
    return [
        Import(module, target, f"{rel}:{node.lineno}")
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for target in _targets(module, path.name == "__init__.py", node)
    ]


@cache
def imports() -> tuple[Import, ...]:
    return tuple(imp for module, path in modules().items() for imp in _imports_of(module, path))


def graph() -> dict[str, dict[str, Import]]:
    """module -> {module it imports: the first such import}, our modules only."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in modules()}
    for imp in imports():
        if imp.target in edges and imp.target != imp.source:
            edges[imp.source].setdefault(imp.target, imp)
    return edges


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module only."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _shortest_cycle(start: str, members: set[str], edges: dict[str, dict[str, Import]]) -> list[str]:
    """The shortest loop from ``start`` back to itself inside one component."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges[node]):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is in a component but on no loop")


def cycles() -> list[list[str]]:
    """One shortest loop through each module that is on one, each loop listed once."""
    edges = graph()
    seen: set[tuple[str, ...]] = set()
    loops = []
    for component in _strongly_connected(edges):
        for start in component:
            loop = _shortest_cycle(start, set(component), edges)
            ring = loop[:-1]
            first = ring.index(min(ring))
            key = tuple(ring[first:] + ring[:first])
            if key not in seen:
                seen.add(key)
                loops.append([*key, key[0]])
    return sorted(loops)


def test_the_walker_sees_the_tree():
    found = modules()
    assert {"musicsim", "musicsim.library", "musicsim.store.repo", "trainer", "trainer.__main__"} <= set(found)
    targets = {imp.target for imp in imports() if imp.source == "musicsim.library"}
    assert "musicsim.library.facade" in targets


def test_no_import_cycles():
    edges = graph()
    loops = cycles()
    lines = []
    for loop in loops:
        lines.append(" -> ".join(loop))
        lines += [f"    {edges[a][b]}" for a, b in zip(loop, loop[1:])]
    assert not loops, f"{len(loops)} import cycle(s):\n" + "\n".join(lines)


def _offending(sources, banned: tuple[str, ...]) -> list[str]:
    return [
        str(imp)
        for imp in imports()
        if sources(imp.source) and any(imp.target == b or imp.target.startswith(b + ".") for b in banned)
    ]


def test_trainer_stands_alone():
    """The trainer takes tracks and options; only its __main__'s library mode opens a library."""
    bad = _offending(
        lambda m: (m == "trainer" or m.startswith("trainer.")) and m != "trainer.__main__",
        ("musicsim.library", "musicsim.store", "sqlalchemy"),
    )
    assert not bad, "\n".join(bad)


def test_scan_and_organizing_do_not_use_the_facade():
    """Scanning is pure and organizing works on the database and index, not on ``Library``.
    ``musicsim.library`` itself (its ``__init__``) re-exports the facade, so it counts too."""
    bad = [
        str(imp)
        for imp in imports()
        if (imp.source == "musicsim.library.organizing" or imp.source.startswith("musicsim.scan"))
        and imp.target in ("musicsim.library", "musicsim.library.facade")
    ]
    assert not bad, "\n".join(bad)


def test_imports_resolve_to_the_module_they_name():
    def targets(code: str, module: str = "musicsim.store.db", is_package: bool = False) -> list[str]:
        return [t for node in ast.parse(code).body for t in _targets(module, is_package, node)]

    assert targets("import musicsim.store.repo, numpy.linalg") == ["musicsim.store.repo", "numpy.linalg"]
    assert targets("from musicsim.store import repo, Base") == ["musicsim.store.repo", "musicsim.store"]
    assert targets("from musicsim.organize.similar import rank_by_seeds") == ["musicsim.organize.similar"]
    assert targets("from musicsim.store.nowhere import x") == ["musicsim.store"]
    assert targets("from . import repo") == ["musicsim.store.repo"]
    assert targets("from .repo import tracks") == ["musicsim.store.repo"]
    assert targets("from .. import errors") == ["musicsim.errors"]
    assert targets("from ..organize import similar, as_matrix") == ["musicsim.organize.similar", "musicsim.organize"]
    assert targets("from .schema import Base", "musicsim.store", True) == ["musicsim.store.schema"]
    assert targets("from . import db", "musicsim.store", True) == ["musicsim.store.db"]


def test_cycles_are_found_and_named():
    edges = {"a": {"b": None}, "b": {"c": None}, "c": {"a": None, "d": None}, "d": {}, "e": {"e": None}}
    assert _strongly_connected(edges) == [["a", "b", "c"]]
    assert _shortest_cycle("b", {"a", "b", "c"}, edges) == ["b", "c", "a", "b"]
