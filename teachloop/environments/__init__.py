"""Environments: tasks the student is evaluated on and the teacher makes data for."""

from __future__ import annotations

from typing import Any

from teachloop import plugins
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


def get_environment(name: str, **options: Any) -> Environment:
    """The environment registered as `name`, built from validated `options` and checked
    against the Environment contract (required members, optional hooks)."""
    factory = plugins.load(plugins.ENVIRONMENTS, name)
    env = plugins.build("environment", name, factory, options)
    plugins.check_component(env, ENVIRONMENT_CONTRACT, name)
    return env


def available_environments() -> list[str]:
    return plugins.available(plugins.ENVIRONMENTS)


__all__ = [
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
