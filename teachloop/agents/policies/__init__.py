"""Data-generation policies, found by name through the `teachloop.policies` entry points."""

from __future__ import annotations

from typing import Any

from teachloop.agents.policies.base import (
    BasePolicy,
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
from teachloop.registry import Registry

POLICIES = Registry.of(
    "policy",
    option_flag="--policy-option KEY=VALUE, or policy_options: in a config",
    contract=POLICY_CONTRACT,
)


def get_policy(name: str, **options: Any) -> Policy:
    """The policy registered as `name`, built from validated `options` and checked against
    the Policy contract (required members, optional hooks)."""
    policy: Policy = POLICIES.build(name, options)
    return policy


def available_policies() -> list[str]:
    return POLICIES.names()


__all__ = [
    "BasePolicy",
    "POLICIES",
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
