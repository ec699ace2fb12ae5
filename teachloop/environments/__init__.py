"""Environments: tasks the student is evaluated on and the teacher makes data for."""

from __future__ import annotations

from typing import Any

from teachloop.environments.base import (
    ENVIRONMENT_CONTRACT,
    AnswerLengthEnvironment,
    CheckingEnvironment,
    Environment,
    FormattingEnvironment,
    ProgrammaticEnvironment,
    exact_attempt,
    scored_attempt,
)
from teachloop.registry import Registry

ENVIRONMENTS = Registry(
    kind="environment",
    group="teachloop.environments",
    command="environments",
    option_flag="--env-option KEY=VALUE, or environment_options: in a config",
    contract=ENVIRONMENT_CONTRACT,
)


def get_environment(name: str, **options: Any) -> Environment:
    """The environment registered as `name`, built from validated `options` and checked
    against the Environment contract (required members, optional hooks)."""
    env: Environment = ENVIRONMENTS.build(name, options)
    return env


def available_environments() -> list[str]:
    return ENVIRONMENTS.names()


__all__ = [
    "ENVIRONMENTS",
    "ENVIRONMENT_CONTRACT",
    "AnswerLengthEnvironment",
    "CheckingEnvironment",
    "Environment",
    "FormattingEnvironment",
    "ProgrammaticEnvironment",
    "available_environments",
    "exact_attempt",
    "get_environment",
    "scored_attempt",
]
