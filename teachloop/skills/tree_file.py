"""The skill-tree file: a skill hierarchy a user writes by hand, in YAML or JSON.

```yaml
name: my-math                  # optional
skills:
  - name: algebra
    description: equations and expressions
  - name: linear-equations
    parent: algebra            # optional; absent = a top-level skill
    description: solve ax + b = c
```

The suffix picks the syntax (.yaml / .yml / .json; the JSON form has the same keys). An
entry is `{name, parent?, description?}`; parents may come after their children. Names
are unique and `root` is reserved. `read_tree_file` also reads the node-link JSON that
`SkillTree.save` writes into run folders (`runs/<name>/skills.json`), so a run's tree can
be reused as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from teachloop.errors import TeachloopError
from teachloop.io import atomic_write_text, read_text
from teachloop.skills.tree import ROOT, SkillTree, SkillTreeError

SUFFIXES = (".yaml", ".yml", ".json")
ENTRY_SHAPE = "{name, parent?, description?}"


class SkillTreeFileError(SkillTreeError, TeachloopError):
    """A skill-tree file that cannot be read; the message names the file and the entry."""


class SkillEntry(BaseModel):
    """One skill of a skill-tree file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, description="unique skill name (the label rows use)")
    parent: str | None = Field(default=None, description="the enclosing skill; absent: a top-level skill")
    description: str = Field(default="", description="what the skill is, for the teacher and reports")


class SkillTreeFile(BaseModel):
    """A whole skill-tree file: an optional name and the list of skills."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="skills", min_length=1, description="the tree's name")
    skills: list[Any] = Field(min_length=1, description=f"the skills, each {ENTRY_SHAPE}")


# -- reading ----------------------------------------------------------------------------------
def read_tree_file(path: str | Path) -> SkillTree:
    """A SkillTree from a skill-tree file (YAML or JSON by suffix) or a node-link JSON."""
    path = Path(path).expanduser()
    data = _load(path)
    if isinstance(data, Mapping) and "nodes" in data:  # node-link JSON (SkillTree.save, run folders)
        try:
            return SkillTree.from_dict(data)
        except (SkillTreeError, KeyError, TypeError, ValueError) as exc:
            raise SkillTreeFileError(f"skill tree {path}: not a valid node-link skill tree: {exc}") from None
    return tree_from_data(data, str(path))


def read_skill_tree(path: str | Path, env: str) -> SkillTree:
    """An environment's `skill_tree` option: the tree, or an error that names the environment."""
    try:
        return read_tree_file(path)
    except SkillTreeFileError as exc:
        raise SkillTreeFileError(f"{env}: skill_tree: {exc}") from None


def tree_from_data(data: Any, source: str) -> SkillTree:
    """A SkillTree from the parsed content of a skill-tree file; `source` names it in errors."""
    if not isinstance(data, Mapping):
        raise SkillTreeFileError(
            f"skill tree {source}: expected a mapping with a 'skills' list (each {ENTRY_SHAPE}), "
            f"got {type(data).__name__}"
        )
    try:
        top = SkillTreeFile.model_validate(data)
    except ValidationError as exc:
        raise SkillTreeFileError(f"skill tree {source}: {_problems(exc)}") from None
    entries = [_entry(raw, number, source) for number, raw in enumerate(top.skills, start=1)]
    return _build(top.name, entries, source)


def _load(path: Path) -> Any:
    if path.suffix.lower() not in SUFFIXES:
        raise SkillTreeFileError(f"skill tree {path}: use a .yaml, .yml or .json file")
    if not path.is_file():
        raise SkillTreeFileError(f"skill tree {path} does not exist")
    try:
        text = read_text(path, "skill tree")
    except TeachloopError as exc:
        raise SkillTreeFileError(str(exc)) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SkillTreeFileError(f"skill tree {path}: not valid JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SkillTreeFileError(f"skill tree {path}: not valid YAML: {' '.join(str(exc).split())}") from None


def _entry(raw: Any, number: int, source: str) -> SkillEntry:
    label = f"entry {number}" + (f" ({raw['name']!r})" if isinstance(raw, Mapping) and "name" in raw else "")
    if not isinstance(raw, Mapping):
        raise SkillTreeFileError(f"skill tree {source}: {label}: expected {ENTRY_SHAPE}, got {raw!r}")
    try:
        return SkillEntry.model_validate(raw)
    except ValidationError as exc:
        raise SkillTreeFileError(f"skill tree {source}: {label}: {_problems(exc)}; an entry is {ENTRY_SHAPE}") from None


def _problems(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _build(name: str, entries: list[SkillEntry], source: str) -> SkillTree:
    """The tree, in any order of the entries: `SkillTree.from_entries` orders parents before
    children and refuses reserved or duplicate names, unknown parents and cycles."""
    try:
        return SkillTree.from_entries((e.model_dump() for e in entries), name=name, source=source)
    except SkillTreeError as exc:
        raise SkillTreeFileError(str(exc)) from None


# -- writing ----------------------------------------------------------------------------------
def tree_file_data(tree: SkillTree) -> dict[str, Any]:
    """The skill-tree file content of a tree: skills in the order they were added, empty fields left out."""
    skills: list[dict[str, str]] = []
    for node in tree.graph.nodes:  # insertion order: parents before children, as added
        if node == ROOT:
            continue
        entry = {"name": node}
        if tree.parent(node) is not None:
            entry["parent"] = tree.parent(node)
        if tree.description(node):
            entry["description"] = tree.description(node)
        skills.append(entry)
    return {"name": tree.name, "skills": skills}


def write_tree_file(tree: SkillTree, path: str | Path) -> None:
    """Write `tree` as a skill-tree file, YAML or JSON by the suffix of `path`."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise SkillTreeFileError(f"skill tree {path}: use a .yaml, .yml or .json file")
    data = tree_file_data(tree)
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    atomic_write_text(path, text)
