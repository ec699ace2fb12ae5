"""The one plug-in table (`KINDS` in teachloop/registry.py): every kind's registry, base class,
CLI word and config key in one place, docs/plugins.md's table true to it, every built-in a
subclass of its kind's base, and "unknown name" said one way for every kind."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from teachloop.errors import ConfigError, PluginError
from teachloop.registry import KINDS, Kind
from teachloop.runs.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def _doc_rows() -> dict[str, list[str]]:
    rows = {}
    for line in (ROOT / "docs" / "plugins.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 7 and cells[0] not in ("kind", "---"):
            rows[cells[0]] = cells
    return rows


def _public(path: str) -> type:
    module, _, name = path.strip("`").rpartition(".")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.command)
def test_each_kind_is_one_registry_with_a_base_class_and_the_docs_say_so(kind: Kind) -> None:
    registry = kind.load_registry()
    assert (registry.kind, registry.group, registry.command) == (kind.name, kind.group, kind.command)
    base = kind.load_base()
    assert base.kind == kind.name  # components need not set `kind` by hand
    row = _doc_rows()[kind.name]
    assert _public(row[1]) is base, f"docs/plugins.md names {row[1]} as the {kind.name} base class"
    assert row[2] == f"`{kind.group}`" and f"teachloop {kind.command} list" in row[4]
    key = kind.config_key.split()[0]
    assert row[3].startswith(f"`{key}`")
    top = key.split(".")[0]
    assert top in RunConfig.model_fields, f"{kind.name}: config key {key} is not a RunConfig field"


def _built_ins(group: str) -> dict[str, str]:
    """name -> 'module:Class' of teachloop's own entry points in `group` (pyproject.toml)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split(f'[project.entry-points."{group}"]', 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+) = "([\w.:]+)"', section, flags=re.M))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.command)
def test_every_built_in_subclasses_its_kinds_base_class(kind: Kind) -> None:
    built_ins = _built_ins(kind.group)
    assert built_ins, f"no built-in {kind.name} in pyproject.toml"
    base = kind.load_base()
    for name, target in built_ins.items():
        module, attribute = target.split(":")
        cls = getattr(importlib.import_module(module), attribute)
        assert isinstance(cls, type) and issubclass(cls, base), f"{kind.name} {name}: {cls} is not a {base.__name__}"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.command)
def test_an_unknown_name_is_one_line_with_a_suggestion_for_every_kind(kind: Kind) -> None:
    registry = kind.load_registry()
    known = registry.names()[0]
    typo = known[:-1] + ("x" if known[-1] != "x" else "y")
    for catch in (ConfigError, PluginError):  # callers catch it as either
        with pytest.raises(catch) as err:
            registry.check_name(typo)
        message = str(err.value)
        assert message.startswith(f"unknown {kind.name} {typo!r} (did you mean {known!r}?); available: ")
        assert "\n" not in message and all(n in message for n in (*kind.reserved, *registry.names()))
    for name in (*kind.reserved, *registry.names()):
        registry.check_name(name)
