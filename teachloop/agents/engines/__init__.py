"""Data-generation engines: DataPlan -> verified, de-duplicated, decontaminated examples,
found by name through the `teachloop.engines` entry points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from teachloop.agents.engines.base import ENGINE_CONTRACT, BaseEngine, Engine
from teachloop.agents.engines.programmatic import ProgrammaticEngine
from teachloop.errors import ConfigError
from teachloop.registry import Registry

if TYPE_CHECKING:
    from teachloop.agents.teacher import TeacherLLM

ENGINES = Registry(
    kind="engine",
    group="teachloop.engines",
    command="engines",
    option_flag="--engine-option KEY=VALUE, or engine_options: in a config; the llm engine's verify and "
    "answer_samples also as --verify, --answer-samples",
    contract=ENGINE_CONTRACT,
)


def check_engine_name(name: str) -> None:
    """A one-line ConfigError unless `name` is a registered engine (`auto` is resolved by the
    run config before it gets here)."""
    if name not in ENGINES.names():
        raise ConfigError(f"unknown engine {name!r}; available: auto, {', '.join(ENGINES.names())}")


def get_engine(name: str, teacher: TeacherLLM | None = None, progress: bool = False, **options: Any) -> Engine:
    """The engine registered as `name`, built from its validated `options` with the run's
    teacher (None without one) and progress switch."""
    check_engine_name(name)
    engine: Engine = ENGINES.build(name, options, teacher=teacher, progress=progress)
    return engine


__all__ = [
    "ENGINES",
    "ENGINE_CONTRACT",
    "BaseEngine",
    "Engine",
    "ProgrammaticEngine",
    "check_engine_name",
    "get_engine",
]
