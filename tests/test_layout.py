"""The import graph of teachloop stays clean (docs/architecture.md, "Layers"): no two modules import
each other, directly or round a longer circle, and imports point down the layers only. The same
holds at every folder depth: inside any package, its children (sub-packages and modules) never
import each other round a circle, and where a package declares an order of its children
(ORDERS: `runs`), imports between them point down that order only.

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
# Packages whose children are ordered like the layers, lowest first: a child may import only
# from its own rank or lower ones. Elsewhere children need no declared order, but they must not
# import each other round a circle (test_no_circles_between_siblings, at every depth).
ORDERS: dict[str, dict[str, int]] = {
    # the loop and the bench produce run folders; reporting (report.md, metrics views, the
    # leaderboard, `show`) reads them; export reads runs and their reports
    "runs": {"config": 0, "flags": 0, "loop": 1, "bench": 2, "reporting": 3, "export": 4},
}


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


def packages(known: dict[str, Path]) -> list[str]:
    """Every package (a folder with an __init__.py), the top one included."""
    return sorted(m for m, p in known.items() if p.name == "__init__.py")


def child(package: str, module: str) -> str | None:
    """The name directly under `package` that `module` is or lies in: teachloop.runs,
    teachloop.runs.loop.store -> loop; None for the package itself (its __init__) or outside it."""
    if not module.startswith(package + "."):
        return None
    return module[len(package) + 1 :].split(".")[0]


def sibling_imports(graph: dict[str, dict[str, int]], package: str) -> dict[tuple[str, str], list[str]]:
    """(child a, child b) -> every import by which something in a imports something in b, as
    `module -> target, line N`. The package's own __init__ is no sibling: it is the package's
    face (it may re-export its children); a circle through it is test_no_import_circles'."""
    found: dict[tuple[str, str], list[str]] = {}
    for module, edges in sorted(graph.items()):
        a = child(package, module)
        for target, line in sorted(edges.items()):
            b = child(package, target)
            if a is not None and b is not None and a != b:
                found.setdefault((a, b), []).append(f"{module} -> {target}, line {line}")
    return found


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
    edges = [f"    {a} -> {b} (line {graph[a][b]})" for a in component for b in sorted(graph[a]) if b in inside]
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


def test_circles_and_upward_arrows_between_siblings_are_found(tmp_path: Path) -> None:
    """No two modules import each other, yet the sub-packages do (a.x -> b.y, b.z -> a.w): a
    circle between siblings; with `a` declared below `b`, b.z -> a.w is fine and a.x -> b.y up."""
    pkg = tmp_path / PACKAGE
    for folder in ("a", "b"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from teachloop.b import y\n")
    (pkg / "a" / "w.py").write_text("")
    (pkg / "b" / "y.py").write_text("")
    (pkg / "b" / "z.py").write_text("from teachloop.a.w import W\n")
    known = {module_name(p, tmp_path): p for p in pkg.rglob("*.py")}
    graph = {m: {t: line for t, line in imports_of(m, p, known)} for m, p in known.items()}
    assert not [c for c in strongly_connected(graph) if len(c) > 1]  # no module circle
    found = sibling_imports(graph, PACKAGE)
    assert found == {
        ("a", "b"): ["teachloop.a.x -> teachloop.b.y, line 1"],
        ("b", "a"): ["teachloop.b.z -> teachloop.a.w, line 1"],
    }
    assert _sibling_circles(graph) == [(PACKAGE, ["a", "b"])]
    assert _upward_sibling_imports(graph, {"": {"a": 0, "b": 1}}) == [
        "  teachloop.a.x -> teachloop.b.y, line 1: teachloop.a (rank 0) imports teachloop.b (rank 1)"
    ]


def _sibling_circles(graph: dict[str, dict[str, int]]) -> list[tuple[str, list[str]]]:
    """(package, its children round a circle) for every circle between siblings, at every depth."""
    found = []
    for package in sorted({m for m in graph if m == PACKAGE or m.startswith(PACKAGE + ".")}):
        children = {(a, b) for a, b in sibling_imports(graph, package)}
        if not children:
            continue
        collapsed: dict[str, dict[str, int]] = {}
        for a, b in children:
            collapsed.setdefault(a, {})[b] = 1
            collapsed.setdefault(b, {})
        found += [(package, c) for c in strongly_connected(collapsed) if len(c) > 1]
    return found


def _upward_sibling_imports(graph: dict[str, dict[str, int]], orders: dict[str, dict[str, int]]) -> list[str]:
    bad = []
    for name, order in sorted(orders.items()):
        package = f"{PACKAGE}.{name}" if name else PACKAGE
        for (a, b), imports in sorted(sibling_imports(graph, package).items()):
            if a in order and b in order and order[b] > order[a]:
                bad += [
                    f"  {imp}: {package}.{a} (rank {order[a]}) imports {package}.{b} (rank {order[b]})"
                    for imp in imports
                ]
    return bad


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


def test_no_circles_between_siblings() -> None:
    """At every depth, a package's children (sub-packages, modules) never import each other round
    a circle, even where no two modules do (runs.loop.runner -> runs.reporting.metrics ->
    runs.loop.store was one)."""
    graph = import_graph()
    circles = _sibling_circles(graph)
    lines = []
    for package, members in circles:
        found = sibling_imports(graph, package)
        lines.append(f"  in {package}: " + ", ".join(members))
        lines += [
            f"    {a} -> {b}: {found[a, b][0]}" + (f" (+{len(found[a, b]) - 1} more)" if len(found[a, b]) > 1 else "")
            for a in members
            for b in members
            if (a, b) in found
        ]
    assert not circles, "sub-packages or modules of one package that import each other round a circle:\n" + (
        "\n".join(lines)
    )


def test_every_child_of_an_ordered_package_has_a_rank() -> None:
    known = modules()
    problems = []
    for name, order in sorted(ORDERS.items()):
        package = f"{PACKAGE}.{name}"
        assert package in packages(known), f"ORDERS names {package}, which is no package"
        children = {c for m in known if (c := child(package, m)) is not None}
        problems += [f"{package}.{c} has no rank: put it in ORDERS[{name!r}]" for c in sorted(children - set(order))]
        problems += [f"ORDERS[{name!r}] names {package}.{c}, which is gone" for c in sorted(set(order) - children)]
    assert not problems, "\n".join(problems) + " (tests/test_layout.py, and docs/architecture.md's order)"


def test_imports_point_down_inside_ordered_packages() -> None:
    bad = _upward_sibling_imports(import_graph(), ORDERS)
    assert not bad, "imports that point up a package's declared order (ORDERS in tests/test_layout.py):\n" + (
        "\n".join(bad)
    )


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


def test_the_architecture_doc_shows_the_orders_the_test_enforces() -> None:
    """docs/architecture.md says each declared order as `Inside `runs/`, lowest first: `a`, `b` < `c` ...`."""
    import re

    doc = (ROOT.parent / "docs" / "architecture.md").read_text()
    for name, order in ORDERS.items():
        said = re.search(rf"Inside `{name}/`, lowest first: ([^.]+)\.", doc)
        assert said, f"docs/architecture.md does not say the order inside {name}/"
        ranks = [re.findall(r"`(\w+)`", step) for step in said.group(1).split("<")]
        assert {c: rank for rank, names in enumerate(ranks) for c in names} == order
