"""Environments: tasks the student is evaluated on and the teacher makes data for."""

from __future__ import annotations

from typing import Any

from teachloop import plugins
from teachloop.errors import ConfigError
from teachloop.environments.base import Environment, ProgrammaticEnvironment, exact_attempt


def get_environment(name: str, **options: Any) -> Environment:
    factory = plugins.load(plugins.ENVIRONMENTS, name)
    try:
        return factory(**options)
    except TypeError as exc:  # an option the environment does not take
        raise ConfigError(f"environment {name!r} does not accept options {sorted(options)}: {exc}") from None


def available_environments() -> list[str]:
    return plugins.available(plugins.ENVIRONMENTS)


__all__ = ["Environment", "ProgrammaticEnvironment", "available_environments", "exact_attempt", "get_environment"]
