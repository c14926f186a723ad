"""No import cycles among backend modules, function-level and type-only imports included.

An import hidden inside a function or an ``if TYPE_CHECKING:`` block still means the two
modules need each other: the cycle is in the design, the import's place only hides it from
the interpreter. So the graph is built from every ``import`` statement anywhere in a file.

An edge goes to the most specific backend module an import names: ``import a.b`` and
``from a import b`` (when ``a/b.py`` exists) point to ``a.b``; ``from a.b import name``
points to ``a.b``. Relative imports are resolved against the importing file's package.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from backend.config import PROJECT_ROOT

Graph = Mapping[str, set[str]]


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file under ``root/package``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, here: str, is_package: bool) -> Iterator[str]:
    """Every dotted name an import statement may load, most specific first per name."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        anchor = here.split(".")
        if not is_package:
            anchor = anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        yield f"{base}.{alias.name}"  # `from pkg import module`
        yield base


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.ImportFrom):
                targets = _from_targets(node, name, is_package, modules)
            else:
                targets = [_known(alias.name, modules) for alias in node.names]
            graph[name].update(t for t in targets if t is not None and t != name)
    return graph


def _from_targets(
    node: ast.ImportFrom, here: str, is_package: bool, modules: Mapping[str, Path]
) -> list[str | None]:
    names = list(_imported(node, here, is_package))
    # pairs: (base.alias, base) per alias; take the submodule when it exists
    return [
        names[i] if names[i] in modules else _known(names[i + 1], modules)
        for i in range(0, len(names), 2)
    ]


def _known(dotted: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of ``dotted`` that is one of our modules (None: not ours)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def a_cycle(graph: Graph, component: Iterable[str]) -> list[str]:
    """One concrete cycle through the component's first module, to name in a failure."""
    members = set(component)
    start = min(members)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError("not a cycle")  # pragma: no cover


def cycles_report(graph: Graph) -> list[str]:
    return [" -> ".join(a_cycle(graph, c)) for c in strongly_connected(graph)]


# -- the check ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend_graph() -> dict[str, set[str]]:
    return import_graph(PROJECT_ROOT, "backend")


def test_backend_has_no_import_cycles(backend_graph):
    cycles = cycles_report(backend_graph)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_graph_sees_the_whole_backend(backend_graph):
    assert "backend.main" in backend_graph and "backend.db.models" in backend_graph
    assert "backend.db.models" in backend_graph["backend.db.crud.catalog"]


# -- the checker on packages written for it -------------------------------------------------


def write(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


ACYCLIC = {
    "pkg/__init__.py": "",
    "pkg/a.py": "import os\nfrom pkg import b\nfrom pkg.sub.c import thing\n",
    "pkg/b.py": "from .sub import c\n",
    "pkg/sub/__init__.py": "from pkg.sub.c import thing\n",
    "pkg/sub/c.py": "import json\nthing = 1\n",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, []),
        # a function-level import, the usual way a cycle is hidden
        ({"pkg/sub/c.py": "def f():\n    from pkg.a import x\n"}, ["pkg.a", "pkg.b", "pkg.sub.c"]),
        # a type-only import
        (
            {"pkg/sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
             "    import pkg.b\n"},
            ["pkg.b", "pkg.sub.c"],
        ),
        # a relative import two levels up, naming a module
        ({"pkg/sub/c.py": "from .. import b\n"}, ["pkg.b", "pkg.sub.c"]),
        # relative import of a sibling, inside a class body
        ({"pkg/sub/c.py": "class K:\n    from . import d\n", "pkg/sub/d.py": "import pkg.sub.c\n"},
         ["pkg.sub.c", "pkg.sub.d"]),
        # from-import of a name defined in a package's __init__
        ({"pkg/sub/c.py": "def f():\n    from pkg import a\n"}, ["pkg.a", "pkg.b", "pkg.sub.c"]),
        ({"pkg/__init__.py": "from pkg.a import x\n"}, []),  # a package re-exporting: fine
        ({"pkg/sub/c.py": "from pkg import __doc__\n", "pkg/__init__.py": "import pkg.a\n"},
         ["pkg", "pkg.a", "pkg.b", "pkg.sub.c"]),
    ],
)  # fmt: skip
def test_checker_finds_every_kind_of_cycle(tmp_path, change, expected):
    write(tmp_path, ACYCLIC | change)
    found = strongly_connected(import_graph(tmp_path, "pkg"))
    assert found == ([expected] if expected else [])


def test_checker_reports_a_concrete_cycle():
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set()}
    assert cycles_report(graph) == ["a -> b -> c -> a"]
    graph["c"].clear()
    assert cycles_report(graph) == []


def test_checker_on_random_graphs_agrees_with_brute_force():
    """Tarjan against reachability on a few hundred random graphs."""
    rng = random.Random(17)
    for _ in range(300):
        nodes = [f"m{i}" for i in range(rng.randint(1, 9))]
        graph = {n: {m for m in nodes if m != n and rng.random() < 0.2} for n in nodes}

        def reach(source: str, g: Graph = graph) -> set[str]:
            seen, todo = set(), [source]
            while todo:
                for child in g[todo.pop()]:
                    if child not in seen:
                        seen.add(child)
                        todo.append(child)
            return seen

        reachable = {n: reach(n) for n in nodes}
        expected = sorted(
            {
                tuple(sorted({n} | {m for m in reachable[n] if n in reachable[m]}))
                for n in nodes
                if n in reachable[n]
            }
        )
        assert [tuple(c) for c in strongly_connected(graph)] == expected
