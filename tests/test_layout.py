"""The import graph of teachloop stays clean (docs/architecture.md, "Layers"): no two modules import
each other, directly or round a longer circle, and imports point down the layers only.

Every module is parsed with `ast`, never imported, and every import statement counts: top
level, inside a function, under `if TYPE_CHECKING:`. `from pkg import name` is an edge to the
module `pkg.name` when there is one, else to `pkg`; relative imports are resolved first.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "teachloop"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# The layer of each top-level name of the package; a module may import only from its own
# layer or lower ones. "" is the package's own __init__.
LAYERS: dict[str, int] = {
    "": 0,
    "types": 0,
    "errors": 0,
    "io": 0,
    "registry": 0,
    "faults": 0,
    "stopping": 0,
    "skills": 1,
    "environments": 2,
    "inference": 3,
    "agents": 4,
    "students": 4,
    "runs": 5,
    "cli": 6,
}
# top-level names that share a layer but must not import each other
APART = [frozenset({"agents", "students"})]


def module_name(path: Path, root: Path = ROOT.parent) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def top(module: str) -> str:
    """The top-level name under the package: teachloop.skills.tree -> skills, teachloop -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(base: str, level: int, package: str) -> str:
    if level == 0:
        return base
    parts = package.split(".")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([base] if base else []))


def _owner(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that `name` is or lies in."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported teachloop module, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package_of(module, path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    target = _owner(alias.name, known)
                    if target is not None:
                        yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, package)
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if alias.name != "*" and full in known else _owner(base, known)
                if target is not None:
                    yield target, node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line of the import}; self-imports are dropped."""
    known = modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(module, path, known):
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted; singletons included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
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
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
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
                components.append(sorted(component))
    return components


def _describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    inside = set(component)
    edges = [
        f"    {a} -> {b} (line {graph[a][b]})" for a in component for b in sorted(graph[a]) if b in inside
    ]
    return "  " + ", ".join(component) + "\n" + "\n".join(edges)


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Function-level, TYPE_CHECKING, relative and `from pkg import module` imports all count."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import thing\n")
    (pkg / "sub" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from teachloop.sub.b import B\nthing = 1\n"
    )
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import sub\n    from teachloop.sub import a\n")
    known = {module_name(p, tmp_path): p for p in pkg.rglob("*.py")}
    found = {m: {t for t, _ in imports_of(m, p, known)} for m, p in known.items()}
    assert found["teachloop.sub"] == {"teachloop.sub.a"}
    assert found["teachloop.sub.a"] == {"teachloop.sub.b"}
    assert found["teachloop.sub.b"] == {"teachloop.sub", "teachloop.sub.a"}
    graph = {m: dict.fromkeys(t, 1) for m, t in found.items()}
    circles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert circles == [["teachloop.sub", "teachloop.sub.a", "teachloop.sub.b"]]  # sub -> a -> b -> sub


def test_no_import_circles() -> None:
    graph = import_graph()
    circles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert not circles, "modules that import each other (directly or round a circle):\n" + "\n".join(
        _describe(c, graph) for c in circles
    )


def test_every_top_level_module_has_a_layer() -> None:
    unplaced = sorted({top(m) for m in modules()} - set(LAYERS))
    assert not unplaced, (
        f"{PACKAGE}.{{{', '.join(unplaced)}}} has no layer: put it in a layer (LAYERS in tests/test_layout.py, "
        "and the table in docs/architecture.md) or move it into an existing one"
    )


def test_imports_point_down_the_layers() -> None:
    graph = import_graph()
    bad = []
    for module, edges in sorted(graph.items()):
        for target, line in sorted(edges.items()):
            a, b = top(module), top(target)
            if a not in LAYERS or b not in LAYERS:
                continue  # reported by test_every_top_level_module_has_a_layer
            if LAYERS[b] > LAYERS[a]:
                bad.append(f"  {module} (layer {LAYERS[a]}) -> {target} (layer {LAYERS[b]}), line {line}")
            elif a != b and frozenset({a, b}) in APART:
                bad.append(f"  {module} -> {target}, line {line}: {a} and {b} must not import each other")
    assert not bad, "imports that point up the layers or sideways:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_names_are_real_or_optional(name: str) -> None:
    """A layer entry names a module or package of teachloop (plugins/registry: either)."""
    if name in ("", "plugins", "registry"):
        return
    assert (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file(), f"LAYERS names {PACKAGE}.{name}, which is gone"


def test_the_architecture_doc_shows_the_layers_the_test_enforces() -> None:
    """docs/architecture.md's table of layers is the one LAYERS holds."""
    import re

    doc = (ROOT.parent / "docs" / "architecture.md").read_text()
    documented = {}
    for layer, names in re.findall(r"^\| (\d) \| ([^|]+) \|", doc, flags=re.MULTILINE):
        for name in re.findall(r"`(\w+)`", names):
            documented[name] = int(layer)
    assert documented == {name: layer for name, layer in LAYERS.items() if name}
