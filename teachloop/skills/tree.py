"""SkillTree: skills and subskills with descriptions, on a networkx.DiGraph.

Edges point from a skill to its subskills. Examples are labelled with skills (usually
leaves); a node's accuracy aggregates every example labelled with it or any descendant.
A tree is built skill by skill with `add` (a parent before its subskills), or all at once,
in any order, with `from_entries`: the one place that orders parents before children and
refuses a missing parent, a duplicate or a cycle (the skill-tree file is read through it).
Files (the hand-written skill-tree file, and node-link JSON from run folders) are read and
written by the functions of `teachloop.skills.tree_file`, which builds on this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic_core import core_schema

from teachloop.errors import TeachloopError

ROOT = "root"
ENTRY = "{name, description?, parent?}"


class SkillTreeError(TeachloopError, ValueError):
    """A skill tree that cannot be built; the message names the tree and the skill. A
    TeachloopError, so an environment whose `setup` builds a bad tree stops with this message,
    not with one that blames the environment's options."""


class SkillTree:
    def __init__(self, name: str = "skills") -> None:
        self.graph = nx.DiGraph(name=name)
        self.graph.add_node(ROOT, description=name)

    # -- building -----------------------------------------------------------------
    def add(self, skill: str, description: str = "", parent: str | None = ROOT) -> None:
        """Add `skill` under `parent` (None or `root`: a top-level skill), which must be in the
        tree already; `from_entries` takes the skills in any order."""
        parent = ROOT if parent is None else parent
        where = f"skill tree {self.name!r}: skill {skill!r}"
        if skill == ROOT:
            raise SkillTreeError(f"{where}: the name {ROOT!r} is reserved; rename the skill")
        if skill in self.graph:
            raise SkillTreeError(f"{where} already exists")
        if parent not in self.graph:
            raise SkillTreeError(
                f"{where}: unknown parent {parent!r} (not added yet): add a parent before its subskills, or build "
                f"the whole tree at once, in any order, with SkillTree.from_entries([{ENTRY}, ...])"
            )
        self.graph.add_node(skill, description=description)
        self.graph.add_edge(parent, skill)

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[Mapping[str, Any] | Sequence[Any]],
        name: str = "skills",
        source: str | None = None,
    ) -> SkillTree:
        """A tree from entries in any order: each `{name, description?, parent?}` (or a
        `(name, description, parent)` tuple); a parent may come after its subskills, and an
        absent (None) or `root` parent makes a top-level skill. Skills keep the entries' order,
        each parent placed just before its first subskill when it comes later. A reserved or
        duplicate name, an unknown parent or a cycle is a SkillTreeError naming `source` (the
        file the entries come from; default: the tree's name), the entry and the skill."""
        where_tree = f"skill tree {source if source is not None else repr(name)}"
        rows = [_entry_fields(entry, where_tree, i) for i, entry in enumerate(entries, start=1)]
        number: dict[str, int] = {}
        for i, (skill, _, _) in enumerate(rows, start=1):
            where = f"{where_tree}: entry {i} ({skill!r})"
            if skill == ROOT:
                raise SkillTreeError(f"{where}: the name {ROOT!r} is reserved; rename the skill")
            if skill in number:
                raise SkillTreeError(f"{where}: duplicate name, already entry {number[skill]}")
            number[skill] = i
        parent_of = {skill: (None if parent in (None, ROOT) else parent) for skill, _, parent in rows}
        for i, (skill, _, _) in enumerate(rows, start=1):
            where = f"{where_tree}: entry {i} ({skill!r})"
            parent = parent_of[skill]
            if parent is not None and parent not in number:
                raise SkillTreeError(f"{where}: unknown parent {parent!r}; a parent must be the name of another entry")
        for i, (skill, _, _) in enumerate(rows, start=1):
            chain, above = [skill], parent_of[skill]
            while above is not None:
                chain.append(above)
                if above == skill:
                    raise SkillTreeError(
                        f"{where_tree}: entry {i} ({skill!r}): its parents form a cycle: " + " -> ".join(chain)
                    )
                if len(chain) > len(rows):  # a cycle above this entry; reported at its own entry
                    break
                above = parent_of[above]
        tree = cls(name)
        description_of = {skill: description for skill, description, _ in rows}

        def place(skill: str) -> None:  # a parent listed later is added just before its first subskill
            parent = parent_of[skill]
            if parent is not None and parent not in tree:
                place(parent)
            tree.add(skill, description_of[skill], parent=parent)

        for skill, _, _ in rows:
            if skill not in tree:
                place(skill)
        return tree

    @classmethod
    def from_list(cls, skills: Mapping[str, str] | Iterable[str], name: str = "skills") -> SkillTree:
        tree = cls(name)
        items = skills.items() if isinstance(skills, Mapping) else ((s, "") for s in skills)
        for skill, description in items:
            tree.add(skill, description)
        return tree

    # -- queries ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.graph.graph.get("name", "skills")

    def __contains__(self, skill: object) -> bool:
        return skill in self.graph and skill != ROOT

    def skills(self) -> list[str]:
        """All skills except the root, parents before children."""
        return [n for n in nx.topological_sort(self.graph) if n != ROOT]

    def leaves(self) -> list[str]:
        return [n for n in self.skills() if self.graph.out_degree(n) == 0]

    def children(self, skill: str = ROOT) -> list[str]:
        return list(self.graph.successors(skill))

    def parent(self, skill: str) -> str | None:
        parents = list(self.graph.predecessors(skill))
        return parents[0] if parents and parents[0] != ROOT else None

    def description(self, skill: str) -> str:
        return self.graph.nodes[skill].get("description", "")

    def descendants(self, skill: str) -> set[str]:
        return nx.descendants(self.graph, skill)

    def leaves_under(self, skill: str) -> list[str]:
        if self.graph.out_degree(skill) == 0:
            return [skill]
        below = self.descendants(skill)
        return [leaf for leaf in self.leaves() if leaf in below]

    def is_group(self, skill: str) -> bool:
        """A skill with subskills (an inner node of the tree)."""
        return skill in self and self.graph.out_degree(skill) > 0

    def depth(self, skill: str) -> int:
        """0 for a top-level skill, 1 for its subskills, and so on."""
        return len(self.ancestors(skill))

    def ancestors(self, skill: str) -> list[str]:
        """The skills above `skill`, nearest first (the root left out)."""
        above = []
        parent = self.parent(skill)
        while parent is not None:
            above.append(parent)
            parent = self.parent(parent)
        return above

    def preorder(self) -> list[str]:
        """All skills in reading order: each skill, then its subtree (children as added)."""
        return [n for n in nx.dfs_preorder_nodes(self.graph, ROOT) if n != ROOT]

    def tally(self, items: Iterable[tuple[Iterable[str], bool]]) -> tuple[dict[str, int], dict[str, int]]:
        """Per node: how many items count for it, and how many of them are hits.

        `items` are (skill labels, hit) pairs. An item counts once for each of its labels and
        each ancestor of them, so a group holds every item labelled with it or a descendant,
        once however many of its skills label the item. Every tree node is present (0 when no
        item reaches it), in reading order; labels outside the tree count as themselves, last.
        """
        totals = dict.fromkeys(self.preorder(), 0)
        hits = dict.fromkeys(self.preorder(), 0)
        for labels, hit in items:
            nodes: set[str] = set()
            for label in labels:
                nodes.add(label)
                if label in self:
                    nodes.update(self.ancestors(label))
            for node in nodes:
                totals[node] = totals.get(node, 0) + 1
                hits[node] = hits.get(node, 0) + int(hit)
        order = self.preorder() + sorted(set(totals) - set(self.preorder()))
        return {n: totals[n] for n in order}, {n: hits[n] for n in order}

    # -- aggregation --------------------------------------------------------------
    def aggregate(self, correct: Mapping[str, int], total: Mapping[str, int]) -> dict[str, float]:
        """Per-node accuracy: counts of a node plus all its descendants.

        `correct` and `total` map the skills examples are labelled with to counts.
        Nodes without any labelled example below them are left out.
        """
        result: dict[str, float] = {}
        for node in self.skills():
            members = {node} | self.descendants(node)
            n = sum(total.get(m, 0) for m in members)
            if n:
                result[node] = sum(correct.get(m, 0) for m in members) / n
        return result

    # -- serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return nx.node_link_data(self.graph, edges="edges")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkillTree:
        graph = nx.node_link_graph(dict(data), directed=True, edges="edges")
        label = f"skill tree {graph.graph.get('name', 'skills')!r}"
        if ROOT not in graph:
            raise SkillTreeError(f"{label}: a skill tree needs a 'root' node")
        if not nx.is_tree(graph) or not nx.is_directed_acyclic_graph(graph):
            raise SkillTreeError(f"{label}: skills must form a tree under 'root'")
        tree = cls.__new__(cls)
        tree.graph = nx.DiGraph(graph)
        return tree

    def save(self, path: str | Path) -> None:
        """Node-link JSON, as run folders store it (`runs/<name>/skills.json`). Reading it back,
        and the skill-tree file a user writes, is `teachloop.skills.tree_file.read_tree_file`."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SkillTree) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SkillTree({self.name!r}, {len(self.skills())} skills)"

    def render(self) -> str:
        lines: list[str] = [self.name]

        def walk(node: str, depth: int) -> None:
            for child in self.children(node):
                desc = self.description(child)
                lines.append("  " * depth + f"- {child}" + (f": {desc}" if desc else ""))
                walk(child, depth + 1)

        walk(ROOT, 1)
        return "\n".join(lines)

    # -- pydantic integration: a SkillTree field (de)serialises as node-link JSON --------
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        def validate(value: Any) -> SkillTree:
            return value if isinstance(value, SkillTree) else cls.from_dict(value)

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda t: t.to_dict()),
        )


def _entry_fields(entry: Mapping[str, Any] | Sequence[Any], where: str, number: int) -> tuple[str, str, str | None]:
    """(name, description, parent) of one `from_entries` entry."""
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - {"name", "description", "parent"})
        if "name" not in entry or unknown:
            problem = f"unknown keys {unknown}" if unknown else "no name"
            raise SkillTreeError(f"{where}: entry {number}: {problem}; an entry is {ENTRY}")
        skill, description, parent = entry["name"], entry.get("description") or "", entry.get("parent")
    elif isinstance(entry, Sequence) and not isinstance(entry, str) and 1 <= len(entry) <= 3:
        skill, description, parent = (*entry, *("", None)[len(entry) - 1 :])  # the missing ones default
        description = description or ""
    else:
        raise SkillTreeError(f"{where}: entry {number}: expected {ENTRY} or (name, description, parent), got {entry!r}")
    if not isinstance(skill, str) or not skill:
        raise SkillTreeError(f"{where}: entry {number}: the name must be a non-empty string, got {skill!r}")
    return skill, str(description), parent
