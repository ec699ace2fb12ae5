"""Data-generation policies, found by name through the `teachloop.policies` entry points."""

from __future__ import annotations

from typing import Any

from teachloop import plugins
from teachloop.agents.policies.base import (
    POLICY_CONTRACT,
    ModelsPolicy,
    Policy,
    PoolAttemptsPolicy,
    PoolOnlyPolicy,
    SelectingPolicy,
    StudentProbe,
    TeacherPolicy,
    allocate,
    needs_pool_attempts,
    pool_only,
    uses_teacher,
)


def get_policy(name: str, **options: Any) -> Policy:
    """The policy registered as `name`, built from validated `options` and checked against
    the Policy contract (required members, optional hooks)."""
    factory = plugins.load(plugins.POLICIES, name)
    policy = plugins.build("policy", name, factory, options)
    plugins.check_component(policy, POLICY_CONTRACT, name)
    return policy


def available_policies() -> list[str]:
    return plugins.available(plugins.POLICIES)


__all__ = [
    "POLICY_CONTRACT",
    "ModelsPolicy",
    "Policy",
    "PoolAttemptsPolicy",
    "PoolOnlyPolicy",
    "SelectingPolicy",
    "StudentProbe",
    "TeacherPolicy",
    "allocate",
    "available_policies",
    "get_policy",
    "needs_pool_attempts",
    "pool_only",
    "uses_teacher",
]
