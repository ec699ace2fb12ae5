"""Entry-point registries: policies, environments and teacher backends are found by name.

Built-ins register through the same entry-point groups as third-party plug-ins (see
pyproject.toml), so a plug-in package is a first-class citizen.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from teachloop.errors import PluginError

POLICIES = "teachloop.policies"
ENVIRONMENTS = "teachloop.environments"
TEACHER_BACKENDS = "teachloop.teacher_backends"

_KIND = {POLICIES: "policy", ENVIRONMENTS: "environment", TEACHER_BACKENDS: "teacher backend"}


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def available(group: str) -> list[str]:
    return sorted(_entry_points(group))


def load(group: str, name: str) -> Any:
    """The object a plug-in registers under `name` (a class or factory)."""
    eps = _entry_points(group)
    kind = _KIND.get(group, group)
    if not eps:
        raise PluginError(
            f"no {kind} is registered at all: install teachloop (pip install -e .) so its entry points exist"
        )
    if name not in eps:
        raise PluginError(f"unknown {kind} {name!r}; available: {', '.join(sorted(eps))}")
    try:
        return eps[name].load()
    except Exception as exc:  # a broken plug-in must not look like a teachloop bug
        raise PluginError(f"{kind} {name!r} is registered but failed to load: {exc}") from exc
