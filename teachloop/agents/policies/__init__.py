"""Data-generation policies, found by name through the `teachloop.policies` entry points."""

from __future__ import annotations

from typing import Any

from teachloop import plugins
from teachloop.agents.policies.base import Policy, SelectingPolicy, StudentProbe, allocate
from teachloop.errors import ConfigError


def get_policy(name: str, **options: Any) -> Policy:
    factory = plugins.load(plugins.POLICIES, name)
    try:
        policy = factory(**options)
    except TypeError as exc:
        raise ConfigError(f"policy {name!r} does not accept options {sorted(options)}: {exc}") from exc
    if not isinstance(policy, Policy):
        raise ConfigError(f"policy {name!r} does not implement plan(state) -> DataPlan")
    return policy


def available_policies() -> list[str]:
    return plugins.available(plugins.POLICIES)


__all__ = ["Policy", "SelectingPolicy", "StudentProbe", "allocate", "available_policies", "get_policy"]
