"""Environments: tasks the student is evaluated on and the teacher makes data for."""

from __future__ import annotations

from typing import Any

from teachloop.environments.base import (
    BaseEnvironment,
    ENVIRONMENT_CONTRACT,
    AnswerLengthEnvironment,
    CheckingEnvironment,
    Environment,
    FormattingEnvironment,
    ProgrammaticEnvironment,
    exact_attempt,
    scored_attempt,
)
from teachloop.environments.check import check_environment
from teachloop.registry import Registry

ENVIRONMENTS = Registry.of(
    "environment",
    option_flag="--env-option KEY=VALUE, or environment_options: in a config",
    contract=ENVIRONMENT_CONTRACT,
)


def get_environment(name: str, **options: Any) -> Environment:
    """The environment registered as `name`, built from validated `options`, checked against
    the Environment contract (required members, optional hooks) and by `check_environment`
    (labels in its tree, `score` returns an Attempt)."""
    env: Environment = ENVIRONMENTS.build(name, options)
    check_environment(env, name)
    return env


def available_environments() -> list[str]:
    return ENVIRONMENTS.names()


__all__ = [
    "BaseEnvironment",
    "ENVIRONMENTS",
    "ENVIRONMENT_CONTRACT",
    "AnswerLengthEnvironment",
    "CheckingEnvironment",
    "Environment",
    "FormattingEnvironment",
    "ProgrammaticEnvironment",
    "available_environments",
    "check_environment",
    "exact_attempt",
    "get_environment",
    "scored_attempt",
]
